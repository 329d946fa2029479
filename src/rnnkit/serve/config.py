"""What a server serves and its limits: one dataclass, passed to each worker as a JSON file.

``rnnkit serve`` validates the options, writes a :class:`ServeConfig` to a private temporary
file and names it in the environment variable :data:`ENV_VAR`; every uvicorn worker process
calls :func:`rnnkit.serve.app.create_app_from_env` (an app factory), which reads it back. The
token itself never travels: workers read ``token_file``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Optional

from ..errors import ConfigError

ENV_VAR = "RNNKIT_SERVE_CONFIG"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class ServeConfig:
    """A server's models and limits (the ``rnnkit serve`` options)."""

    #: model name -> checkpoint or ONNX export directory
    models: Dict[str, str] = field(default_factory=dict)
    #: the most items (texts, audio clips, histories) one batched call runs
    max_batch: int = 32
    #: how long the first request of a batch waits for company (milliseconds)
    batch_wait_ms: float = 5.0
    #: a file holding the bearer token every endpoint but /health then requires
    token_file: Optional[str] = None
    #: request bodies above this are refused (413) before they are parsed
    max_body_mb: float = 10.0
    #: the most texts in one sentiment/seq2seq request
    max_texts: int = 256
    #: the most characters in one text
    max_text_chars: int = 10_000
    #: the most characters charlm generates per request (``length``)
    max_length: int = 5_000
    #: the longest audio clip accepted (seconds)
    max_audio_seconds: float = 60.0
    #: the largest beam for seq2seq/asr requests
    max_beam: int = 16
    #: the most history rows in one forecast request
    max_history_rows: int = 100_000

    def __post_init__(self) -> None:
        for name in self.models:
            check_name(name)
        positive = {"max_batch": self.max_batch, "max_body_mb": self.max_body_mb, "max_texts": self.max_texts,
                    "max_text_chars": self.max_text_chars, "max_length": self.max_length,
                    "max_audio_seconds": self.max_audio_seconds, "max_beam": self.max_beam,
                    "max_history_rows": self.max_history_rows}
        for k, v in positive.items():
            if not v > 0:
                raise ConfigError(f"--{k.replace('_', '-')} must be > 0, got {v}")
        if self.batch_wait_ms < 0:
            raise ConfigError(f"--batch-wait-ms must be >= 0, got {self.batch_wait_ms}")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeConfig":
        return cls(**json.loads(text))

    @classmethod
    def from_env(cls) -> "ServeConfig":
        path = os.environ.get(ENV_VAR)
        if not path:
            raise ConfigError(f"{ENV_VAR} is not set: start the server with `rnnkit serve`")
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def check_name(name: str) -> str:
    """A model name as it appears in URLs: letters, digits, ``.``, ``_``, ``-``; never ``..``."""
    if not NAME_RE.match(name) or ".." in name:
        raise ConfigError(f"model name {name!r}: use 1-64 letters, digits, '.', '_' or '-' (no '..'), "
                          "e.g. NAME=RUN")
    return name


def read_token(path: str) -> str:
    """The bearer token in ``path`` (surrounding whitespace dropped); one line on error."""
    from ..fileio import read_text_capped

    token = read_text_capped(path, "--token-file").strip()
    if not token or any(c.isspace() for c in token):
        raise ConfigError(f"{path}: --token-file must hold one token without spaces")
    if len(token) < 16:
        raise ConfigError(f"{path}: --token-file's token is {len(token)} characters; use at least 16 "
                          "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
