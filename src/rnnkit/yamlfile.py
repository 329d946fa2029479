"""YAML files users hand rnnkit (``--config``), read strictly.

* the file must be a regular file of at most 64 MB (:mod:`rnnkit.fileio`): a fifo or
  ``/dev/zero`` is refused before anything reads it;
* safe tags only (no ``!!python/...``), through PyYAML's ``SafeLoader``;
* **no aliases** (``*name``, and so no ``<<: *name`` merges): a 424-byte "billion laughs"
  document expands to hundreds of MB; a run config has no use for them;
* **no duplicate keys** in a mapping: PyYAML keeps the last one silently, so a repeated
  ``hidden_size:`` would hide which value a run used.

Every problem is one :class:`~rnnkit.errors.ConfigError` line naming the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError, UserError, shown
from .fileio import read_bytes_capped


def _loader():
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in rnnkit configs", mark)
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: the base class reports it
                    break
                if duplicate:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {shown(key)}", key_node.start_mark)
            return super().construct_mapping(node, deep)

    return yaml, StrictLoader


def load_yaml_file(path: Path, what: str = "config") -> Any:
    """The YAML document in ``path`` (see the module docstring for what is refused)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ConfigError(f"{path}: no such {what} file")
    try:
        text = read_bytes_capped(path, what).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: cannot read {what} (not UTF-8 text)") from None
    except ConfigError:
        raise
    except UserError as e:
        raise ConfigError(str(e)) from None
    yaml, loader = _loader()
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None)
        raise ConfigError(f"{path}: invalid YAML{where}" + (f" ({shown(problem, 120)[1:-1]})" if problem else "")) from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML (nested too deeply)") from None
    except (ValueError, OverflowError, TypeError) as e:  # PyYAML's constructors: 2020-13-45, 5000-digit ints
        raise ConfigError(f"{path}: invalid YAML value ({shown(str(e), 120)[1:-1]})") from None
