"""``rnnkit export CK --format onnx``: a checkpoint's networks as ONNX graphs, verified at export.

What is exported (the torch side; :mod:`rnnkit.export.onnx_runtime` runs the result):

* the task's inference computation as one graph (two for seq2seq: the encoder, and one
  decoder step with attention), wrapped by :mod:`rnnkit.export.graphs`;
* through the legacy TorchScript exporter (``dynamo=False``: the dynamo exporter specialises
  an LSTM's sequence length) with dynamic batch and time axes, traced on one shape and
  checked on others, so a graph that baked a shape in fails the self-check;
* the variable-length route is the encoders' masked ``outputs()`` (one fused kernel call per
  layer and direction on the padded batch), never ``pack_padded_sequence``.

Encoders: ``rnn``, ``rnn-relu``, ``lstm``, ``gru`` export for every task; their ``hand-*``
twins are copied into the fused module first (same parameter names; a traced Python loop
would bake the sequence length in); ``tcn`` and ``transformer`` export for every task but
charlm (whose graph carries a fixed-shape recurrent state); ``mingru``/``minlstm`` are
refused (their scan is a custom autograd kernel or ``logcumsumexp``, which has no ONNX
exporter). A refusal is one line naming the encoder (:class:`~rnnkit.errors.ExportError`).

The export directory holds the graph(s) and ``config.json``: the checkpoint's config (which
already carries the vocabulary, classes, scalers, units and subword model) plus an
``export`` section: format, opset, graph roles, every file's sha256, versions, and the
self-check's figures. It is written in a temporary directory and renamed into place.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import warnings
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .. import checkpoint as C
from ..errors import CheckpointError, ExportError
from ..fileio import replace_dir
from . import graphs as G
from .layout import FORMAT, GRAPH_FILES, OPSET

RECURRENT = ("rnn", "rnn-relu", "lstm", "gru")
REFUSED = {"mingru": "its scan is a custom autograd kernel / logcumsumexp with no ONNX exporter",
           "minlstm": "its scan is a custom autograd kernel / logcumsumexp with no ONNX exporter"}


# ---------------------------------------------------------------------------------------
# the torch model of a checkpoint


def build_modules(config: Dict[str, Any], weights: Optional[Dict[str, np.ndarray]] = None) -> Tuple[nn.Module, nn.Module]:
    """Encoder + task of a checkpoint config, in eval mode, with ``weights`` loaded if given
    (the predictors' one builder, :func:`rnnkit.predictors.torch_nets.load_modules`)."""
    from ..predictors.torch_nets import BUILDERS, load_modules

    if weights is not None:
        return load_modules(config, weights)
    encoder, task = BUILDERS[config["task"]](config)
    return encoder.eval(), task.eval()


def random_variant(base: Path, target: Path, seed: int = 0, **model: Any) -> Path:
    """A checkpoint at ``target`` like ``base`` (its data config: vocabulary, scalers, units)
    with ``model`` config overrides and random weights (every tensor nudged by N(0, 0.05^2),
    so zero-initialised ones are exercised too). For tests and benchmarks of other sizes."""
    config = C.read_config(base)
    config = {k: v for k, v in config.items() if k not in ("weights_sha256", "format_version")}
    config["model"] = {**config["model"], **model}
    torch.manual_seed(seed)
    encoder, task = build_modules(config)
    sd = nn.ModuleDict({"encoder": encoder, "task": task}).state_dict()
    rng = np.random.default_rng(seed)
    weights = {}
    for k, v in sd.items():
        w = v.detach().numpy().copy()
        weights[k] = (w + 0.05 * rng.standard_normal(w.shape)).astype(w.dtype) if w.dtype.kind == "f" else w
    return C.write_checkpoint_dir(Path(target), weights, config)


def exportable_encoder(name: str, encoder: nn.Module, task_name: str, where: Path) -> Tuple[str, nn.Module]:
    """The encoder the graph is traced through (a hand-written cell's fused twin), or a refusal."""
    from ..layers import build_encoder

    if name in REFUSED:
        raise ExportError(f"{where}: encoder {name!r} cannot be exported to ONNX ({REFUSED[name]}); "
                          f"exportable: {', '.join(RECURRENT)}, their hand-* twins, tcn, transformer")
    if name.startswith("hand-"):
        fused = build_encoder(name[len("hand-"):], encoder.input_size, encoder.hidden_size,
                              num_layers=encoder.num_layers, dropout=encoder.dropout,
                              bidirectional=encoder.bidirectional)
        fused.load_state_dict(encoder.state_dict())
        name, encoder = name[len("hand-"):], fused.eval()
    if task_name == "charlm" and name not in RECURRENT:
        raise ExportError(f"{where}: a charlm with encoder {name!r} cannot be exported to ONNX (the graph "
                          f"carries a fixed-shape recurrent state; {name} has a growing cache); "
                          f"exportable: {', '.join(RECURRENT)} and their hand-* twins")
    return name, encoder


# ---------------------------------------------------------------------------------------
# graphs: module, example inputs, names and dynamic axes per role


def _axes(names: List[str], spec: Dict[str, Dict[int, str]]) -> Dict[str, Dict[int, str]]:
    return {n: spec[n.replace("_out", "")] for n in names if n.replace("_out", "") in spec}


def graph_plans(config: Dict[str, Any], encoder: nn.Module, task: nn.Module) -> List[Dict[str, Any]]:
    """What to export: role, file, wrapper module, example inputs, input/output names, axes."""
    t, m = config["task"], config["model"]
    g = torch.Generator().manual_seed(0)
    ids = lambda lo, hi, *shape: torch.randint(lo, hi, shape, generator=g)  # noqa: E731
    lengths = torch.tensor([5, 3])
    B, T_ = {0: "batch"}, {0: "batch", 1: "time"}
    if t == "charlm":
        n = encoder.spec.n_state  # LSTM: (h, c)
        L = encoder.num_layers
        state = tuple(torch.zeros(L, 2, encoder.hidden_size) for _ in range(n))
        ins, outs = G.io_names("charlm", n)
        axes = {"ids": T_, "logits": T_, "h": {1: "batch"}, "c": {1: "batch"}}
        s_in, s_out = G.io_names("charlm_step", n)
        return [dict(role="model", module=G.CharLMGraph(encoder, task), args=(ids(0, task.vocab_size, 2, 5), *state),
                     ins=ins, outs=outs, axes=_axes(ins + outs, axes)),
                dict(role="step", module=G.CharLMStepGraph(encoder, task),
                     args=(ids(0, task.vocab_size, 2), *(s.transpose(1, 2) for s in state)), ins=s_in, outs=s_out,
                     axes=_axes(s_in + s_out, {"token": B, "logits": {1: "batch"}, "h": {2: "batch"}, "c": {2: "batch"}}))]
    if t == "sentiment":
        ins, outs = G.io_names("sentiment")
        V = task.embedding.num_embeddings
        return [dict(role="model", module=G.SentimentGraph(encoder, task), args=(ids(1, V, 2, 5), lengths),
                     ins=ins, outs=outs, axes=_axes(ins + outs, {"ids": T_, "lengths": B, "logits": B}))]
    if t == "forecast":
        ins, outs = G.io_names("forecast")
        L = int(config["data"]["spec"]["lookback"])
        x = torch.randn(2, L, task.input_size, generator=g)
        return [dict(role="model", module=G.ForecastGraph(encoder, task), args=(x,), ins=ins, outs=outs,
                     axes={"x": {0: "batch", 1: "lookback"}, "out": B})]
    if t == "asr":
        ins, outs = G.io_names("asr")
        feats = torch.randn(2, 23, int(m["n_mels"]), generator=g)
        axes = {"feats": T_, "feat_lengths": B, "log_probs": T_, "out_lengths": B}
        return [dict(role="model", module=G.AsrGraph(encoder, task), args=(feats, torch.tensor([23, 14])),
                     ins=ins, outs=outs, axes=_axes(ins + outs, axes))]
    return _seq2seq_plans(encoder, task, ids, lengths)


def _seq2seq_plans(encoder, task, ids, lengths) -> List[Dict[str, Any]]:
    n, feed = task.n_state, task.input_feeding
    enc = G.Seq2SeqEncoderGraph(encoder, task)
    src = ids(4, task.src_vocab, 2, 5)
    with torch.no_grad():
        memory, keys, *state = enc(src, lengths)
    e_in, e_out = G.io_names("seq2seq_encoder", n)
    d_in, d_out = G.io_names("seq2seq_decoder", n, feed)
    mem_axes = {0: "batch", 1: "src_time"}
    axes = {"src": mem_axes, "src_len": {0: "batch"}, "memory": mem_axes, "keys": mem_axes, "h": {1: "batch"},
            "c": {1: "batch"}, "tokens": {0: "batch"}, "prev_a": {0: "batch"}, "logits": {0: "batch"},
            "a": {0: "batch"}, "weights": mem_axes}
    prev = (torch.zeros(2, task.combine.out_features),) if feed else ()
    dec_args = (ids(4, task.tgt_vocab, 2), *state, *prev, memory, keys, lengths)
    return [dict(role="encoder", module=enc, args=(src, lengths), ins=e_in, outs=e_out, axes=_axes(e_in + e_out, axes)),
            dict(role="decoder", module=G.Seq2SeqDecoderGraph(task), args=dec_args, ins=d_in, outs=d_out,
                 axes=_axes(d_in + d_out, axes))]


def _export_graph(plan: Dict[str, Any], path: Path, encoder_name: str, where: Path) -> None:
    plan["module"].eval()  # the exporter restores the wrapper's mode afterwards, recursively
    try:
        with warnings.catch_warnings(), redirect_stderr(io.StringIO()), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(plan["module"], plan["args"], str(path), dynamo=False, opset_version=OPSET,
                              input_names=plan["ins"], output_names=plan["outs"], dynamic_axes=plan["axes"],
                              do_constant_folding=True)
    except Exception as e:  # the exporter raises many types for an unsupported operator
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"{where}: encoder {encoder_name!r} could not be exported to ONNX ({first[:200]})") from None


# ---------------------------------------------------------------------------------------
# the export directory


def _versions() -> Dict[str, str]:
    import onnx
    import onnxruntime

    from .. import __version__

    return {"rnnkit": __version__, "torch": torch.__version__.split("+")[0], "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def _check_out(out: Path, overwrite: bool) -> None:
    """``out`` may be new, an empty directory, or (with ``overwrite``) an earlier export."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    from .onnx_runtime import is_export

    if not is_export(out):
        raise ExportError(f"{out}: already exists and is not an ONNX export; refusing to replace it")
    if not overwrite:
        raise ExportError(f"{out}: already holds an export; pass --overwrite to replace it")


def export_onnx(ck: Path, out: Path, overwrite: bool = False, check: bool = True) -> Dict[str, Any]:
    """Export the checkpoint at ``ck`` into the directory ``out``; returns its ``export`` section."""
    ck, out = Path(ck), Path(out)
    config = C.read_config(ck)
    if "export" in config:
        raise ExportError(f"{ck}: already an ONNX export; export the checkpoint it came from")
    ckpt = C.load_checkpoint(ck)
    _check_out(out, overwrite)
    torch_threads = torch.get_num_threads()
    encoder, task = build_modules(ckpt.config, ckpt.weights)
    name, traced_encoder = exportable_encoder(ckpt.config["model"]["encoder"], encoder, ckpt.task, ck)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)
        files = GRAPH_FILES[ckpt.task]
        for plan in graph_plans(ckpt.config, traced_encoder, task):
            _export_graph(plan, tmp / files[plan["role"]], name, ck)
        section = {"format": FORMAT, "opset": OPSET, "graphs": dict(files),
                   "files": {f: C.sha256_file(tmp / f) for f in files.values()},
                   "encoder": ckpt.config["model"]["encoder"], "traced_encoder": name,
                   "source": {"path": str(ck), "weights_sha256": ckpt.config.get("weights_sha256"),
                              "global_step": ckpt.config.get("global_step")},
                   "versions": _versions()}
        exported = {k: v for k, v in ckpt.config.items() if k != "weights_sha256"}
        exported["export"] = section
        (tmp / C.CONFIG_FILE).write_text(json.dumps(exported, indent=2) + "\n", encoding="utf-8")
        if check:
            from .selfcheck import self_check

            section["self_check"] = self_check(tmp, ckpt.config, encoder, task)
            (tmp / C.CONFIG_FILE).write_text(json.dumps(exported, indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, out)  # never a moment without out for a reader
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(torch_threads)
    return section


__all__ = ["export_onnx", "build_modules", "exportable_encoder", "graph_plans", "CheckpointError"]
