"""The char-LM predictor: sample, stream and score text (``rnnkit sample``, ``rnnkit evaluate``).

Generation steps a :class:`~rnnkit.predictors.nets.CharStepper`: the NumPy runtime for
recurrent encoders (torch is never imported), the encoder's torch ``step()`` otherwise, or an
ONNX step graph. ``"".join(m.stream(...)) == m.sample(...)`` for the same arguments.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np

from ..errors import CheckpointError, ConfigError, InputError
from .base import Predictor, check_float, check_int

LN2 = math.log(2.0)
MAX_LENGTH = 1_000_000  # characters one call may generate


class CheckpointNet:
    """A torch checkpoint's charlm net: NumPy-runtime generation (recurrent encoders), torch
    modules (built on first use) for scoring and for other encoders' ``step()``."""

    def __init__(self, config: Dict[str, Any], weights: Dict[str, np.ndarray], device: str = "cpu",
                 engine: str = "auto") -> None:
        self.config, self.weights, self.device, self.engine = config, weights, device, engine
        self._modules: Optional[Tuple[Any, Any]] = None

    def modules(self):
        if self._modules is None:
            from .torch_nets import load_modules

            self._modules = load_modules(self.config, self.weights, self.device)
        return self._modules

    def stepper(self, engine: Optional[str] = None):
        from ..reference.runtime import numpy_stepper, resolve_engine

        try:
            chosen = resolve_engine(self.config["model"], engine or self.engine)
        except ValueError as e:
            raise InputError(f"engine: {e}") from None
        if chosen == "numpy":
            return numpy_stepper(self.weights, self.config["model"])  # torch is never imported
        from ..tasks.charlm import TorchStepper

        return TorchStepper(*self.modules())

    def score(self, ids: np.ndarray) -> Tuple[float, int]:
        import torch

        from ..tasks.charlm import score_ids

        encoder, task = self.modules()
        # fixed-window encoders (Transformer, TCN) are scored on the windows they were trained on
        window = 256 if encoder.carries_state else int(self.config.get("train", {}).get("data", {}).get("seq_len", 256))
        with torch.inference_mode():
            return score_ids(encoder, task, np.asarray(ids, dtype=np.int64), n_streams=8, seq_len=window)


def check_config(config: Dict[str, Any], weights: Optional[Dict[str, np.ndarray]], where: str) -> None:
    """A charlm checkpoint's config and weights agree (the sha256 covers the weights only, so a
    hand-edited config.json could otherwise fail deep inside the model code)."""
    try:
        model, vocab = config["model"], config["data"]["vocab"]
        kind = str(model["encoder"]).removeprefix("hand-")
        layers, emb_dim = int(model["num_layers"]), int(model["embedding_dim"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}/config.json: no valid {e} entry for a charlm checkpoint") from None
    if not (isinstance(vocab, list) and vocab and all(isinstance(c, str) and len(c) == 1 for c in vocab)):
        raise CheckpointError(f"{where}/config.json: data.vocab must be a list of single characters")
    if weights is None:
        return
    emb = weights.get("task.embedding.weight")
    if emb is None or tuple(emb.shape) != (len(vocab), emb_dim) or "task.head.weight" not in weights:
        raise CheckpointError(f"{where}: weights do not match config.json (vocabulary of {len(vocab)}, "
                              f"embedding {emb_dim})")
    if kind in ("lstm", "gru", "rnn", "rnn-relu"):
        if f"encoder.weight_hh_l{layers - 1}" not in weights or f"encoder.weight_hh_l{layers}" in weights:
            raise CheckpointError(f"{where}: weights do not hold the {layers} {kind} layers config.json names")


def _shown(chars) -> str:
    return "".join(sorted(chars)).encode("unicode_escape").decode("ascii")


class CharLMPredictor(Predictor):
    """A character-level language model.

    >>> m = rnnkit.load("runs/ts")                                   # doctest: +SKIP
    >>> m.sample("ROMEO:", length=200, temperature=0.8, seed=1)       # doctest: +SKIP
    >>> m.score("To be, or not to be")["bits_per_char"]               # doctest: +SKIP
    """

    task = "charlm"
    headline = "bits_per_char"

    def __init__(self, config: Dict[str, Any], net: Any, path=None) -> None:
        super().__init__(config, net, path)
        check_config(config, getattr(net, "weights", None), str(path or "config"))
        self.vocab = list(config["data"]["vocab"])
        self.index = {c: i for i, c in enumerate(self.vocab)}

    @classmethod
    def torch_net(cls, config, weights, device, where):
        return CheckpointNet(config, weights, device)

    # -- generation ------------------------------------------------------------------------
    def check_prime(self, prime: str, unknown: str = "error") -> str:
        """``prime`` with every character in the vocabulary; ``unknown="drop"`` removes the others."""
        if not isinstance(prime, str):
            raise InputError(f"prime must be a string, got {type(prime).__name__}")
        missing = {c for c in prime if c not in self.index}
        if missing and unknown == "drop":
            return "".join(c for c in prime if c in self.index)
        if missing:
            raise InputError(f"prime has characters outside the model's vocabulary: {_shown(missing)!r}; "
                             f"the model knows {len(self.vocab)} characters: {_shown(self.vocab)!r} "
                             "(drop the others with unknown='drop', or --drop-unknown)")
        return prime

    def stream(self, prime: str = "", length: int = 500, temperature: float = 1.0, top_k: Optional[int] = None,
               top_p: Optional[float] = None, seed: Optional[int] = None, unknown: str = "error",
               engine: Optional[str] = None) -> Iterator[str]:
        """Yield ``prime`` (as given, once in-vocabulary), then ``length`` generated characters one
        at a time. An empty prime starts from a newline (not part of the output)."""
        from ..reference.sampling import SamplingParams, next_token

        prime = self.check_prime(prime, unknown)
        check_int("length", length, 0, MAX_LENGTH)
        if seed is not None:
            check_int("seed", seed, 0, 2**63 - 1)
        try:
            params = SamplingParams(check_float("temperature", temperature, 0), top_k, top_p)
        except (ValueError, TypeError) as e:
            raise InputError(str(e)) from None
        start = prime or ("\n" if "\n" in self.index else self.vocab[0])
        stepper = self.net.stepper(engine) if engine else self.net.stepper()
        rng = np.random.default_rng(seed)
        state = logits = None
        for c in start:
            logits, state = stepper.step(self.index[c], state)
        if prime:
            yield prime
        for _ in range(length):
            tok = next_token(logits, rng, params)
            yield self.vocab[tok]
            logits, state = stepper.step(tok, state)

    def sample(self, prime: str = "", length: int = 500, temperature: float = 1.0, top_k: Optional[int] = None,
               top_p: Optional[float] = None, seed: Optional[int] = None, unknown: str = "error",
               engine: Optional[str] = None) -> str:
        """``prime`` followed by ``length`` generated characters (``temperature=0``: greedy)."""
        return "".join(self.stream(prime, length, temperature, top_k, top_p, seed, unknown, engine))

    # -- scoring ---------------------------------------------------------------------------
    def encode(self, text: str) -> Tuple[np.ndarray, Dict[str, int]]:
        """Ids of the in-vocabulary characters of ``text`` and the counts of the others."""
        unknown: Dict[str, int] = {}
        for c in set(text) - set(self.index):
            unknown[c] = text.count(c)
        ids = np.fromiter((self.index[c] for c in text if c in self.index), dtype=np.int64)
        return ids, unknown

    def score(self, text: str) -> Dict[str, Any]:
        """Mean next-character loss of ``text``: ``nats_per_char``, ``bits_per_char``,
        ``characters`` scored, and the characters outside the vocabulary (skipped)."""
        if not isinstance(text, str):
            raise InputError(f"text must be a string, got {type(text).__name__}")
        ids, unknown = self.encode(text)
        return self._score_ids(ids, unknown, "text")

    def _score_ids(self, ids: np.ndarray, unknown: Dict[str, int], what: str) -> Dict[str, Any]:
        if len(ids) < 2:
            raise InputError(f"{what}: fewer than 2 in-vocabulary characters to score")
        loss, n = self.net.score(ids)
        return {"nats_per_char": loss, "bits_per_char": loss / LN2, "characters": n,
                "unknown_characters": int(sum(unknown.values())), "unknown": "".join(sorted(unknown))}

    def evaluate(self, data: Optional[str] = None) -> Dict[str, Any]:
        """Score the validation split of a named corpus (default: the training one), or a whole
        text file or folder: the dict of ``rnnkit evaluate --json``."""
        from ..data.datasets import CORPORA, corpus_path
        from ..data.text import encode_corpus

        data = data or self.config["data"].get("corpus")
        if not data:
            raise ConfigError("this checkpoint does not name its corpus; give --data")
        val_fraction = self.config.get("train", {}).get("data", {}).get("val_fraction", 0.1)
        if data in CORPORA:
            corpus = encode_corpus(corpus_path(data), name=data)
            _, ids = corpus.split(val_fraction)
            text = corpus.vocab.decode(np.asarray(ids))
            scope = f"{data} validation split (last {val_fraction:g})"
            ids, unknown = self.encode(text)
        else:
            from ..data.text import CharVocab, count_unknown

            ids, unknown = count_unknown(corpus_path(data), CharVocab.from_json(self.vocab))
            scope = f"{data} (whole file)"
        result = self._score_ids(ids, unknown, str(data))
        loss = result.pop("nats_per_char")
        return {"checkpoint": str(self.path), "data": scope, "loss": loss, **result}

    def describe(self, result: Dict[str, Any]) -> str:
        skipped = (f"; {result['unknown_characters']} characters outside the vocabulary skipped ({result['unknown']!r})"
                   if result["unknown_characters"] else "")
        return (f"{result['data']}: {result['loss']:.4f} nats/char, {result['bits_per_char']:.4f} bits/char over "
                f"{result['characters']} characters{skipped}")
