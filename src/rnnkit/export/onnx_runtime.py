"""ONNX exports run by onnxruntime, behind the network protocols of :mod:`rnnkit.predictors.nets`.

torch-free: NumPy, onnxruntime and rnnkit's torch-free modules only, so an exported charlm,
sentiment, forecast, asr or seq2seq model runs where torch is not installed (seq2seq's
search is NumPy too: :mod:`rnnkit.export.search`).

Loading (:func:`load_net`) checks, before anything runs: ``config.json`` has an ``export``
section of format "onnx" for a known task; every listed file exists and matches its
sha256; each graph loads in onnxruntime; each graph's input and output names are the ones
its task's role has (:mod:`rnnkit.export.layout`), so a graph of another task is refused.
Every failure is one :class:`~rnnkit.errors.CheckpointError` line naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from statistics import NormalDist
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import checkpoint as C
from ..errors import CheckpointError, InputError, UserError
from . import search
from .layout import FORMAT, GRAPH_FILES, graph_role, io_names

EVAL_STREAMS, SCORE_SEQ_LEN = 8, 256  # as the torch charlm predictor (rnnkit.predictors.charlm)
LEVELS = (0.1, 0.5, 0.9)  # as rnnkit.tasks.forecast_baselines.LEVELS


def require(module: str, what: str):
    """Import an optional dependency of the ``export`` extra, or one line saying how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{what} needs {module}: pip install 'rnnkit[export]'") from None


class Graph:
    """One onnxruntime session, its input/output names checked against the task's role."""

    def __init__(self, path: Path, ins: List[str], outs: List[str], threads: Optional[int] = None,
                 optimize: bool = True) -> None:
        ort = require("onnxruntime", f"{Path(path).parent}: running an ONNX export")

        opts = ort.SessionOptions()
        if not optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads = int(threads if threads is not None else os.environ.get("OMP_NUM_THREADS", 0) or 0)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CheckpointError(f"{path}: not a loadable ONNX graph ({first[:200]})") from None
        got_in = [i.name for i in self.session.get_inputs()]
        got_out = [o.name for o in self.session.get_outputs()]
        if got_in != ins or got_out != outs:
            raise CheckpointError(f"{path}: graph inputs {got_in} / outputs {got_out} do not match this export's "
                                  f"task (expected {ins} / {outs}); the directory mixes exports")
        self.outs = outs

    def __call__(self, **feeds: np.ndarray) -> Dict[str, np.ndarray]:
        return dict(zip(self.outs, self.session.run(None, feeds)))


# ---------------------------------------------------------------------------------------
# one net per task


class OrtCharStepper:
    def __init__(self, net: "OrtCharLM") -> None:
        self.net = net

    def step(self, token: int, state: Any = None) -> Tuple[np.ndarray, Any]:
        net = self.net
        if state is None:  # the step graph's own column layout (L, H, 1)
            state = tuple(np.zeros((net.layers, net.hidden, 1), np.float32) for _ in net.state_names)
        out = net.step_graph(token=np.array([token], np.int64), **dict(zip(net.state_names, state)))
        return out["logits"][:, 0].astype(np.float64), tuple(out[f"{s}_out"] for s in net.state_names)


class OrtCharLM:
    """charlm: the sequence graph scores text; the step graph generates."""

    def __init__(self, graph: Graph, step_graph: Graph, n_state: int, layers: int, hidden: int) -> None:
        self.graph, self.step_graph = graph, step_graph
        self.n_state, self.layers, self.hidden = n_state, layers, hidden
        self.state_names = ["h", "c"][:n_state]

    def zeros(self, batch: int) -> Tuple[np.ndarray, ...]:
        return tuple(np.zeros((self.layers, batch, self.hidden), np.float32) for _ in self.state_names)

    def run(self, ids: np.ndarray, state: Optional[Tuple[np.ndarray, ...]] = None):
        """ids (B, T) -> logits (B, T, V) float32 and the state after the last step."""
        if state is None:
            state = self.zeros(ids.shape[0])
        out = self.graph(ids=ids, **dict(zip(self.state_names, state)))
        return out["logits"], tuple(out[f"{s}_out"] for s in self.state_names)

    def stepper(self, engine: Optional[str] = None) -> OrtCharStepper:
        if engine not in (None, "auto", "onnx"):
            raise InputError(f"engine: an ONNX export generates with onnxruntime; {engine!r} needs the checkpoint")
        return OrtCharStepper(self)

    def score(self, ids: np.ndarray, n_streams: int = EVAL_STREAMS, seq_len: int = SCORE_SEQ_LEN) -> Tuple[float, int]:
        """Mean next-character loss in nats, state carried along contiguous streams (as torch)."""
        from ..reference.streams import StreamLayout

        n_streams = max(1, min(n_streams, (len(ids) - 1) // 2))
        layout = StreamLayout(len(ids), n_streams, seq_len, drop_last=False)
        if layout.stream_len < 1:
            raise ValueError("text too short to score (needs at least 2 characters)")
        state, total, count = None, 0.0, 0
        for i in range(layout.n_windows):
            x, y = layout.window(ids, i)
            logits, state = self.run(x, state)
            lp = search.log_softmax(logits.astype(np.float64))  # (B, T, V)
            total -= float(np.take_along_axis(lp, y[..., None], -1).sum())
            count += y.size
        return total / max(count, 1), count


class OrtSentiment:
    def __init__(self, graph: Graph, n_classes: int) -> None:
        self.graph, self.n_classes = graph, n_classes

    def proba(self, ids: Sequence[np.ndarray]) -> np.ndarray:
        from ..data.sentiment import eval_batches

        probs = np.zeros((len(ids), self.n_classes), np.float64)
        lengths = np.array([len(a) for a in ids], dtype=np.int64)
        for b in eval_batches(lengths):
            x = np.zeros((len(b), int(lengths[b].max())), np.int64)
            for j, i in enumerate(b):
                x[j, :lengths[i]] = ids[i]
            logits = self.graph(ids=x, lengths=lengths[b])["logits"].astype(np.float64)
            probs[b] = np.exp(search.log_softmax(logits))
        return probs


class OrtForecast:
    """forecast: the graph gives the head's outputs; the quantile/interval arithmetic of
    :meth:`rnnkit.tasks.forecast.ForecastTask.predict` is repeated here in NumPy."""

    def __init__(self, graph: Graph, model_cfg: Dict[str, Any], event: bool, horizon: int) -> None:
        self.graph, self.horizon = graph, horizon
        self.autoregressive = model_cfg.get("multistep") == "autoregressive"
        self.kind = "event" if event else model_cfg["head"]
        self.quantiles = [float(q) for q in str(model_cfg.get("quantiles", "0.1,0.5,0.9")).split(",")]
        self.levels = ((min(self.quantiles[0], 0.5), 0.5, max(self.quantiles[-1], 0.5)) if self.kind == "quantile"
                       else LEVELS)  # as forecast_baselines.interval_levels

    def predict(self, x: np.ndarray, levels: Optional[Sequence[float]] = None) -> Dict[str, np.ndarray]:
        levels = self.levels if levels is None else tuple(levels)
        out = self.graph(x=np.ascontiguousarray(x, dtype=np.float32))["out"].astype(np.float64)
        if self.kind == "event":
            return {"prob": out}
        if self.kind == "point":
            return {"mean": out[..., 0]}
        if self.kind == "gaussian":
            mu, sigma = out[..., 0], out[..., 1]
            z = np.array([NormalDist().inv_cdf(p) for p in levels])
            return {"mean": mu, "sigma": sigma, "q": mu[..., None] + sigma[..., None] * z}
        q = np.sort(out, axis=-1)  # no crossing quantiles
        taus = np.asarray(self.quantiles)
        return {"mean": np.apply_along_axis(lambda r: np.interp(0.5, taus, r), -1, q),
                "q": np.apply_along_axis(lambda r: np.interp(levels, taus, r), -1, q)}


    def rollout(self, x: np.ndarray, data, windows: np.ndarray) -> Dict[str, np.ndarray]:
        """Autoregressive rollout of a one-step model (as :func:`rnnkit.tasks.forecast.rollout`)."""
        from ..data.timeseries import rollout_inputs

        cur = np.ascontiguousarray(x, dtype=np.float32)
        K = len(data.target_index)
        cal, off = rollout_inputs(data, windows, self.horizon, K)
        cal, off = cal.astype(np.float32), off.astype(np.float32)
        outs, total = [], np.zeros((cur.shape[0], K), np.float32)
        for k in range(self.horizon):
            o = self.graph(x=cur)["out"][:, 0, :, 0]  # (B, K) one step
            total = o if data.spec.transform == "levels" else total + o
            outs.append(total)
            row = np.concatenate([o - off, cal[:, k]], axis=1)[:, None]  # (B, 1, K + F)
            cur = np.concatenate([cur[:, 1:], row], axis=1)  # (B, L, C)
        return {"mean": np.stack(outs, 1).astype(np.float64)}  # (B, H, K)


class OrtAsr:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def posteriors(self, feats: Sequence[np.ndarray], batch_size: int = 32) -> List[np.ndarray]:
        out: List[Optional[np.ndarray]] = [None] * len(feats)
        order = np.argsort([len(f) for f in feats], kind="stable")
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            lengths = np.array([len(feats[i]) for i in idx], np.int64)
            x = np.zeros((len(idx), int(lengths.max()), feats[idx[0]].shape[1]), np.float32)
            for j, i in enumerate(idx):
                x[j, :lengths[j]] = feats[i]
            res = self.graph(feats=x, feat_lengths=lengths)
            for j, i in enumerate(idx):
                out[i] = res["log_probs"][j, :int(res["out_lengths"][j])]
        return out  # type: ignore[return-value]


class OrtSeq2Seq:
    def __init__(self, encoder: Graph, decoder: Graph, n_state: int, input_feeding: bool, attn_size: int) -> None:
        self.encoder, self.decoder = encoder, decoder
        self.state_names = ["h", "c"][:n_state]
        self.input_feeding, self.attn_size = input_feeding, attn_size

    def encode(self, src: np.ndarray, src_len: np.ndarray):
        out = self.encoder(src=src, src_len=src_len)
        return out["memory"], out["keys"], [out[s] for s in self.state_names]

    def step(self, tokens, state, prev_a, memory, keys, src_len):
        feeds = dict(zip(self.state_names, state))
        if self.input_feeding:
            feeds["prev_a"] = prev_a
        out = self.decoder(tokens=tokens, memory=memory, keys=keys, src_len=src_len, **feeds)
        return out["logits"], [out[f"{s}_out"] for s in self.state_names], out["a"], out["weights"]

    def translate_ids(self, src_ids: Sequence[Sequence[int]], beam: int = 1, alpha: float = 0.6,
                      max_len: Optional[int] = None, batch_size: int = 64,
                      no_repeat_ngram: int = 0) -> List[search.Hypothesis]:
        """Length-sorted batches; results in input order (as tasks.seq2seq.translate_ids)."""
        order = sorted(range(len(src_ids)), key=lambda i: len(src_ids[i]))
        out: List[Optional[search.Hypothesis]] = [None] * len(src_ids)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            src, src_len = search.pad_batch([src_ids[j] for j in idx])
            hyps = search.beam_search(self.encode, self.step, self.attn_size, src, src_len, beam, alpha, max_len,
                                      no_repeat_ngram)
            for j, h in zip(idx, hyps):
                out[j] = h
        return out  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------
# loading


def read_export_config(path: Path, expect_task: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """``config.json`` of an export directory, its ``export`` section and files verified."""
    path = Path(path)
    config = C.read_config(path, expect_task)
    section = config.get("export")
    if not isinstance(section, dict) or section.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an ONNX export (config.json has no export section of format {FORMAT!r})")
    task = config["task"]
    files, graphs = section.get("files"), section.get("graphs")
    if graphs != GRAPH_FILES[task] or not isinstance(files, dict) or set(files) != set(graphs.values()):
        raise CheckpointError(f"{path / C.CONFIG_FILE}: its export section does not list the graphs of a {task} "
                              f"export ({', '.join(GRAPH_FILES[task].values())})")
    for name, digest in files.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{f}: missing")
        if C.sha256_file(f) != digest:
            raise CheckpointError(f"{f}: sha256 does not match config.json (corrupt, truncated or mixed export)")
    return config


def _n_state(name: str) -> int:
    return 2 if name.endswith("lstm") else 1


def load_net(path, threads: Optional[int] = None, expect_task: Optional[Sequence[str]] = None) -> Tuple[Dict[str, Any], Any]:
    """``(config, net)`` of an export directory; ``net`` follows the task's protocol in predictors.nets."""
    path = Path(path)
    config = read_export_config(path, expect_task)
    task, m, d = config["task"], config["model"], config["data"]
    files = config["export"]["graphs"]
    n_state = _n_state(config["export"].get("traced_encoder", m["encoder"]) if task == "charlm"
                       else m.get("decoder", "gru"))
    feed = bool(m.get("input_feeding"))

    def graph(role: str) -> Graph:
        ins, outs = io_names(graph_role(task, role), n_state, feed)
        # the step graph runs faster unrewritten: onnxruntime's fusions of its column products
        # cost 20% at batch 1 (2x512 LSTM, interleaved: 1.76 vs 1.45 ms per token)
        return Graph(path / files[role], ins, outs, threads, optimize=role != "step")

    if task == "charlm":
        net: Any = OrtCharLM(graph("model"), graph("step"), n_state, int(m["num_layers"]), int(m["hidden_size"]))
    elif task == "sentiment":
        net = OrtSentiment(graph("model"), len(d["classes"]))
    elif task == "forecast":
        net = OrtForecast(graph("model"), m, bool(d["spec"].get("event")), max(int(d["spec"]["horizon"]), 1))
    elif task == "asr":
        net = OrtAsr(graph("model"))
    else:
        net = OrtSeq2Seq(graph("encoder"), graph("decoder"), n_state, feed, int(m["attention_size"]))
    return config, net


def is_export(path) -> bool:
    """Whether ``path`` is an export directory (its config.json has an ``export`` section)."""
    try:
        return "export" in C.read_config(Path(path))
    except CheckpointError:
        return False
