"""What a checkpoint's ``config.json`` may say, and what its weights must then look like.

The sha256 in ``config.json`` covers the weights, not the config: a hand-edited or hostile
config could claim ``hidden_size: 1000000000`` (a 256 GB allocation), ``"num_layers": "1"``,
an unknown encoder, or sizes that disagree with the weights (a ``size mismatch`` traceback
deep inside torch). :func:`check_checkpoint` runs before anything is built and refuses such a
checkpoint with one line naming the key or the tensor:

* **config**: the top-level keys and their types; the ``model`` section against the task's
  model dataclass (``rnnkit.training.config``: the same types, choices and bounds as the
  training flags; unknown keys refused); the ``data`` section's vocabularies and classes;
* **weights**: every tensor's dtype (float32 / float64; integer buffers only where a task
  declares one) and finiteness (no NaN or infinity); the encoder's tensor names for its
  family, layer count and directions; the shapes the config implies for the recurrent
  weights, minGRU/minLSTM projections, TCN and Transformer blocks, and the task tensors tied
  to the vocabulary (embeddings, output head).

The weights file itself bounds memory: every shape checked here is one the file holds, so a
config that passes cannot make rnnkit allocate more than the checkpoint's own size.

torch-free (NumPy only), like :mod:`rnnkit.checkpoint`, which calls it.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import CheckpointError, ConfigError, shown

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# integer buffers a task registers (name -> shape); everything else is floating point
INTEGER_BUFFERS = {"task.tf_step": (1,)}
TOP_LEVEL = {"format_version": int, "task": str, "weights_sha256": str, "model": dict, "data": dict}
OPTIONAL_TOP_LEVEL = {"optim": dict, "run": dict, "metrics": dict, "global_step": int, "rnnkit_version": str}
# model keys each task's builder reads directly (others fall back to their defaults)
REQUIRED_MODEL_KEYS = {
    "charlm": ("encoder", "hidden_size", "num_layers", "dropout", "embedding_dim"),
    "sentiment": ("encoder", "hidden_size", "num_layers", "dropout", "embedding_dim"),
    "seq2seq": ("encoder", "hidden_size", "num_layers", "embedding_dim", "decoder", "decoder_hidden",
                "decoder_layers", "attention", "attention_size", "input_feeding", "dropout", "tie_weights",
                "label_smoothing"),
    "asr": ("encoder", "hidden_size", "num_layers", "dropout", "bidirectional", "n_mels", "conv_channels", "subsample"),
    "forecast": ("encoder", "hidden_size", "num_layers", "dropout", "head", "loss"),
}
GATES = {"lstm": 4, "gru": 3, "rnn": 1, "rnn-relu": 1}


def _fail(where: str, msg: str) -> None:
    raise CheckpointError(f"{where}: {msg}")


def check_checkpoint(config: Dict[str, Any], weights: Mapping[str, np.ndarray], where: str,
                     weights_where: Optional[str] = None) -> None:
    """Refuse a checkpoint whose config or weights are not what rnnkit writes (see module doc).
    ``where`` names config.json in messages, ``weights_where`` model.safetensors."""
    check_config(config, where)
    check_weights(config, weights, weights_where or where)


# ---- config.json --------------------------------------------------------------------------


def check_config(config: Dict[str, Any], where: str) -> None:
    exported = isinstance(config.get("export"), dict)  # an ONNX export: its files' sha256s are in "export"
    for key, typ in TOP_LEVEL.items():
        if exported and key == "weights_sha256":
            continue
        if key not in config:
            _fail(where, f"missing key {key!r} (every rnnkit checkpoint has task, model and data sections)")
        if not _is(config[key], typ):
            _fail(where, f"{key} must be {typ.__name__}, got {shown(config[key])}")
    for key, typ in OPTIONAL_TOP_LEVEL.items():
        if config.get(key) is not None and not _is(config[key], typ):
            _fail(where, f"{key} must be {typ.__name__}, got {shown(config[key])}")
    if not exported and not re.fullmatch(r"[0-9a-f]{64}", config["weights_sha256"]):
        _fail(where, "weights_sha256 must be 64 hexadecimal digits")
    _check_model(config["task"], config["model"], where)
    _check_data(config["task"], config["data"], where)


def _name(name: str) -> str:
    """A tensor name for a message: as is when short and printable, else quoted and cut."""
    return name if len(name) <= 200 and name.isprintable() else shown(name)


def _is(value: Any, typ: type) -> bool:
    return isinstance(value, typ) and not (typ is int and isinstance(value, bool))


def _check_model(task: str, model: Dict[str, Any], where: str) -> None:
    from .training.config import TASK_SECTIONS  # the model dataclasses: torch-free

    cls = TASK_SECTIONS[task]["model"]
    known = {f.name: f for f in fields(cls)}
    for key in model:
        if key not in known:
            _fail(where, f"unknown key model.{shown(key)[1:-1] if isinstance(key, str) else key} "
                         f"(a {task} model has {', '.join(sorted(known))})")
    for key in REQUIRED_MODEL_KEYS[task]:
        if key not in model:
            _fail(where, f"missing key model.{key}")
    try:
        cls(**model)  # types, choices and bounds, as for the training flags
    except ConfigError as e:
        msg = str(e)
        for name, f in known.items():  # name the key, and the flag that sets it
            flag = f.metadata.get("flag")
            for label in filter(None, (flag, name)):
                if msg.startswith(label + " "):
                    msg = f"model.{name}{' (' + flag + ')' if flag else ''}{msg[len(label):]}"
                    break
            else:
                continue
            break
        _fail(where, msg)


def _str_list(value: Any, unique: bool = True) -> bool:
    return (isinstance(value, list) and all(isinstance(v, str) for v in value)
            and (not unique or len(set(value)) == len(value)))


def _check_data(task: str, data: Dict[str, Any], where: str) -> None:
    if task == "charlm":
        vocab = data.get("vocab")
        if not (_str_list(vocab) and vocab and all(len(c) == 1 for c in vocab)):
            _fail(where, "data.vocab must be a list of distinct single characters")
    elif task == "sentiment":
        vocab, classes = data.get("vocab"), data.get("classes")
        if not (isinstance(vocab, dict) and _str_list(vocab.get("tokens")) and len(vocab["tokens"]) >= 2):
            _fail(where, "data.vocab must hold a list of distinct tokens (data.vocab.tokens)")
        if not (isinstance(classes, list) and len(classes) >= 2 and len(set(map(str, classes))) == len(classes)):
            _fail(where, "data.classes must list at least two distinct classes")
    elif task == "seq2seq":
        sizes = data.get("vocab_sizes")
        if not (isinstance(sizes, list) and len(sizes) == 2 and all(_is(s, int) and s >= 2 for s in sizes)):
            _fail(where, "data.vocab_sizes must be [source size, target size]")
        if not isinstance(data.get("src_vocab"), str):
            _fail(where, "data.src_vocab must be the subword model (base64 text)")
    elif task == "asr":
        units = data.get("units")
        if not (isinstance(units, dict) and _str_list(units.get("tokens"), unique=False) and units["tokens"]):
            _fail(where, "data.units must hold the output units (data.units.tokens)")


# ---- model.safetensors ----------------------------------------------------------------------


def check_weights(config: Dict[str, Any], weights: Mapping[str, np.ndarray], where: str) -> None:
    for name, arr in weights.items():
        if name in INTEGER_BUFFERS:
            if not (np.issubdtype(arr.dtype, np.integer) and tuple(arr.shape) == INTEGER_BUFFERS[name]):
                _fail(where, f"tensor {name} must be an integer buffer of shape {INTEGER_BUFFERS[name]}")
            continue
        if arr.dtype not in FLOAT_DTYPES:
            _fail(where, f"tensor {name} has dtype {arr.dtype}; rnnkit weights are float32 or float64")
        if not np.isfinite(arr).all():
            _fail(where, f"tensor {name} holds NaN or infinite values")
        if not (name.startswith("encoder.") or name.startswith("task.")):
            _fail(where, f"unexpected tensor {_name(name)} (weights are encoder.* and task.*)")
    model, task = config["model"], config["task"]
    shapes = {k: tuple(v.shape) for k, v in weights.items()}
    h_out = _check_encoder(model, _input_size(task, model), shapes, where)
    _check_task(task, config, shapes, h_out, where)


def _input_size(task: str, model: Dict[str, Any]) -> Optional[int]:
    """The encoder's input width when the model config alone fixes it."""
    return model["embedding_dim"] if task in ("charlm", "sentiment", "seq2seq") else None


def _directions(model: Dict[str, Any]) -> int:
    return 2 if model.get("bidirectional", False) else 1


def _expect(shapes: Dict[str, Tuple[int, ...]], name: str, want: Sequence[Optional[int]], where: str, why: str) -> None:
    got = shapes.get(name)
    if got is None:
        _fail(where, f"missing tensor {name} ({why})")
    if len(got) != len(want) or any(w is not None and g != w for g, w in zip(got, want)):
        shown_want = "(" + ", ".join("*" if w is None else str(w) for w in want) + ")"
        _fail(where, f"tensor {name} has shape {got}, but config.json ({why}) implies {shown_want}")


Shape = Tuple[Optional[int], ...]


def encoder_shapes(name: str, hidden: int, layers: int, dirs: int,
                   in_size: Optional[int]) -> Tuple[Dict[str, Shape], Dict[str, Shape]]:
    """``(required, optional)`` tensor names (without ``encoder.``) and shapes of a registered
    encoder built by ``rnnkit.layers.build_encoder`` with its default options; ``None`` in a
    shape: any size (the input width when the config alone does not fix it)."""
    base = name[len("hand-"):] if name.startswith("hand-") else name
    req: Dict[str, Shape] = {}
    opt: Dict[str, Shape] = {}
    H = hidden
    if base in GATES:  # PyTorch's names: weight_ih_l{k}[_reverse] (G*H, in), weight_hh (G*H, H), biases
        G = GATES[base] * H
        for k in range(layers):
            for sfx in ("", "_reverse")[:dirs]:
                req.update({f"weight_ih_l{k}{sfx}": (G, in_size if k == 0 else H * dirs), f"weight_hh_l{k}{sfx}": (G, H),
                            f"bias_ih_l{k}{sfx}": (G,), f"bias_hh_l{k}{sfx}": (G,)})
    elif name in ("mingru", "minlstm"):  # one projection to n gates per direction; residual LayerNorms
        n = 2 if name == "mingru" else 3
        for k in range(layers):
            in_k = in_size if k == 0 else H * dirs
            for cell in ("cell", "cell_reverse")[:dirs]:
                req.update({f"layers.{k}.{cell}.proj.weight": (n * H, in_k), f"layers.{k}.{cell}.proj.bias": (n * H,)})
            if k > 0:
                req.update({f"layers.{k}.norm.weight": (in_k,), f"layers.{k}.norm.bias": (in_k,)})
        if layers > 1:
            req.update({"norm.weight": (H * dirs,), "norm.bias": (H * dirs,)})
    elif name == "tcn":  # kernel 3; a 1x1 downsample where the input width differs
        for k in range(layers):
            in_k = in_size if k == 0 else H
            req.update({f"blocks.{k}.conv1.weight": (H, in_k, 3), f"blocks.{k}.conv1.bias": (H,),
                        f"blocks.{k}.conv2.weight": (H, H, 3), f"blocks.{k}.conv2.bias": (H,)})
            if k == 0 and in_k != H:
                (req if in_k is not None else opt).update({"blocks.0.downsample.weight": (H, in_k, 1),
                                                           "blocks.0.downsample.bias": (H,)})
    elif name == "transformer":  # pre-norm blocks, MLP ratio 4, sinusoidal (or learned) positions
        req.update({"in_proj.weight": (H, in_size), "in_proj.bias": (H,), "norm.weight": (H,), "norm.bias": (H,)})
        opt["pos_embedding.weight"] = (None, H)
        for k in range(layers):
            for part, shape in (("norm1", (H,)), ("norm2", (H,)), ("qkv", (3 * H, H)), ("out", (H, H)),
                                ("fc1", (4 * H, H)), ("fc2", (H, 4 * H))):
                req[f"blocks.{k}.{part}.weight"] = shape
                req[f"blocks.{k}.{part}.bias"] = (shape[0],)
    return req, opt


def _check_against(shapes: Dict[str, Tuple[int, ...]], prefix: str, req: Dict[str, Shape], opt: Dict[str, Shape],
                   where: str, why: str) -> None:
    """The ``prefix*`` tensors must be exactly ``req`` (plus any of ``opt``), with those shapes."""
    found = {k[len(prefix):] for k in shapes if k.startswith(prefix)}
    for key in sorted(found - set(req) - set(opt)):
        _fail(where, f"unexpected tensor {_name(prefix + key)}: config.json says {why}")
    for key in sorted(req):
        _expect(shapes, prefix + key, req[key], where, why)
    for key in sorted(found & set(opt)):
        _expect(shapes, prefix + key, opt[key], where, why)


def _check_encoder(model: Dict[str, Any], in_size: Optional[int], shapes: Dict[str, Tuple[int, ...]],
                   where: str) -> int:
    """Check the ``encoder.*`` tensors against the model config; returns the output width."""
    name, hidden, layers = model["encoder"], model["hidden_size"], model["num_layers"]
    recurrent = name in ("mingru", "minlstm") or name.replace("hand-", "") in GATES
    dirs = _directions(model) if recurrent else 1
    why = (f"model.encoder {name}, model.hidden_size {hidden}, model.num_layers {layers}"
           + (", model.bidirectional true" if dirs == 2 else ""))
    req, opt = encoder_shapes(name, hidden, layers, dirs, in_size)
    _check_against(shapes, "encoder.", req, opt, where, why)
    return hidden * dirs


def _check_task(task: str, config: Dict[str, Any], shapes: Dict[str, Tuple[int, ...]], h_out: int, where: str) -> None:
    """The task tensors tied to the vocabulary, the classes and the encoder's width."""
    model, data = config["model"], config["data"]
    if not any(k.startswith("task.") for k in shapes):
        _fail(where, "no task.* tensors (the output head is missing)")
    if task == "charlm":
        v = len(data["vocab"])
        _expect(shapes, "task.embedding.weight", (v, model["embedding_dim"]), where,
                f"{v} characters in data.vocab, model.embedding_dim {model['embedding_dim']}")
        _expect(shapes, "task.head.weight", (v, h_out), where, f"{v} characters in data.vocab, encoder width {h_out}")
    elif task == "sentiment":
        v, c = len(data["vocab"]["tokens"]), len(data["classes"])
        _expect(shapes, "task.embedding.weight", (v, model["embedding_dim"]), where,
                f"{v} tokens in data.vocab, model.embedding_dim {model['embedding_dim']}")
        _expect(shapes, "task.head.weight", (c, None), where, f"{c} classes in data.classes")
    elif task == "seq2seq":
        vs, vt = data["vocab_sizes"]
        _expect(shapes, "task.src_embedding.weight", (vs, model["embedding_dim"]), where,
                f"data.vocab_sizes {vs}, model.embedding_dim {model['embedding_dim']}")
        _expect(shapes, "task.head.weight", (vt, None), where, f"data.vocab_sizes target {vt}")
        req, _ = encoder_shapes(model["decoder"], model["decoder_hidden"], model["decoder_layers"], 1, None)
        _check_against(shapes, "task.decoder.", req, {}, where, f"model.decoder {model['decoder']}, model.decoder_hidden "
                       f"{model['decoder_hidden']}, model.decoder_layers {model['decoder_layers']}")
    elif task == "asr":
        u = len(data["units"]["tokens"])
        _expect(shapes, "task.head.weight", (u, h_out), where, f"{u} units in data.units, encoder width {h_out}")
    elif task == "forecast":
        _expect(shapes, "task.head.weight", (None, h_out), where, f"encoder width {h_out}")

