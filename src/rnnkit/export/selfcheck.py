"""The export's self-check: the ONNX runtime nets against the torch model, on synthetic inputs.

Runs at export time on the freshly written directory, through the very code a user's
``rnnkit.load(DIR)`` runs (:func:`rnnkit.export.onnx_runtime.load_net`), against the
checkpoint's own torch modules (the hand-written cell where the checkpoint has one, not its
fused twin): random ids or features, batch > 1, mixed lengths, shapes other than the one
the graph was traced on. Targets: max abs difference <= :data:`TOLERANCE` on probabilities,
log-probabilities, logits and forecasts, and identical greedy decodes (charlm, asr,
seq2seq). A miss raises :class:`~rnnkit.errors.ExportError` and nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch

from ..errors import ExportError

TOLERANCE = 1e-4
_ROWS = (11, 7, 1, 4)  # mixed lengths, batch 4, traced on (5, 3)


def _diff(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    return float(np.abs(np.where(both_inf, 0.0, a - b)).max()) if a.size else 0.0


@torch.no_grad()
def _charlm(net, encoder, task, rng) -> Dict[str, Any]:
    from ..tasks import charlm

    V = task.vocab_size
    ids = rng.integers(0, V, size=(3, 9))
    L, H = encoder.num_layers, encoder.hidden_size
    state = tuple(rng.standard_normal((L, 3, H)).astype(np.float32) * 0.5 for _ in range(net.n_state))
    logits, new = net.run(ids, state)
    t_state = tuple(torch.from_numpy(s) for s in state)
    y, t_new = encoder(task.embedding(torch.from_numpy(ids)), t_state[0] if len(t_state) == 1 else t_state)
    t_new = (t_new,) if isinstance(t_new, torch.Tensor) else t_new
    diff = max([_diff(logits, task.head(y))] + [_diff(a, b) for a, b in zip(new, t_new)])
    # the step graph at batch 3 from the same random state
    cols = {n: np.ascontiguousarray(s.transpose(0, 2, 1)) for n, s in zip(net.state_names, state)}  # (L, H, B)
    out = net.step_graph(token=ids[:, 0], **cols)
    y, t_new = encoder.step(task.embedding(torch.from_numpy(ids[:, 0])), t_state[0] if len(t_state) == 1 else t_state)
    t_new = (t_new,) if isinstance(t_new, torch.Tensor) else t_new
    diff = max([diff, _diff(out["logits"].T, task.head(y))]
               + [_diff(out[f"{n}_out"].transpose(0, 2, 1), b) for n, b in zip(net.state_names, t_new)])
    text = rng.integers(0, V, size=600)
    nats, _ = net.score(text, n_streams=8, seq_len=64)
    t_nats, _ = charlm.score_ids(encoder, task, text, n_streams=8, seq_len=64)
    diff = max(diff, abs(nats - t_nats))
    # greedy generation, 40 steps from a random prime, through both steppers
    ours, theirs = net.stepper(), charlm.TorchStepper(encoder, task)
    same, a_state, b_state, a_tok, b_tok = True, None, None, int(text[0]), int(text[0])
    for _ in range(40):
        la, a_state = ours.step(a_tok, a_state)
        lb, b_state = theirs.step(b_tok, b_state)
        diff = max(diff, _diff(la, lb))
        a_tok, b_tok = int(la.argmax()), int(lb.argmax())
        same &= a_tok == b_tok
    return {"max_abs_diff": diff, "greedy_identical": bool(same), "checked": "sequence and step logits and states (batch 3), score, 40 greedy steps"}


@torch.no_grad()
def _sentiment(net, encoder, task, rng) -> Dict[str, Any]:
    from ..tasks import sentiment

    V = task.embedding.num_embeddings
    ids = [rng.integers(1, V, size=n) for n in (*_ROWS, 2, 16)]
    return {"max_abs_diff": _diff(net.proba(ids), sentiment.predict_proba(encoder, task, ids)),
            "checked": f"probabilities of {len(ids)} texts, lengths {sorted(len(i) for i in ids)}"}


@torch.no_grad()
def _forecast(net, encoder, task, rng, lookback: int) -> Dict[str, Any]:
    x = rng.standard_normal((5, lookback, task.input_size)).astype(np.float32)
    ours = net.predict(x)
    xt = torch.from_numpy(x)
    theirs = task.predict(encoder(xt)[0], xt, net.levels)
    if set(ours) != set(theirs):
        return {"max_abs_diff": float("inf"), "checked": f"keys {sorted(ours)} vs {sorted(theirs)}"}
    return {"max_abs_diff": max(_diff(ours[k], theirs[k]) for k in ours), "checked": f"{sorted(ours)} of 5 windows"}


@torch.no_grad()
def _asr(net, encoder, task, rng, n_mels: int) -> Dict[str, Any]:
    from ..tasks import asr

    feats = [rng.standard_normal((n, n_mels)).astype(np.float32) for n in (37, 12, 25, 4)]
    ours, theirs = net.posteriors(feats), asr.posteriors(encoder, task, feats)
    diff = max(_diff(a, b) for a, b in zip(ours, theirs))
    same = all(asr.greedy_decode(a) == asr.greedy_decode(b) for a, b in zip(ours, theirs))
    return {"max_abs_diff": diff, "greedy_identical": bool(same), "checked": "log-probs of 4 utterances"}


@torch.no_grad()
def _seq2seq(net, encoder, task, rng) -> Dict[str, Any]:
    from ..tasks import seq2seq

    src = [list(rng.integers(4, task.src_vocab, size=n)) for n in (9, 3, 6, 1)]
    ours = net.translate_ids(src, beam=1, alpha=0.6, max_len=20)
    theirs = seq2seq.translate_ids(encoder, task, src, beam=1, alpha=0.6, max_len=20)
    same = all(a.tokens == b.tokens for a, b in zip(ours, theirs))
    diff = max(max(abs(a.score - b.score), _diff(a.attention, b.attention.numpy())) for a, b in zip(ours, theirs))
    # one decoder step on a reordered batch: logits directly
    s_t, l_t = seq2seq.pad_batch(src)
    mem = seq2seq._encode(encoder, task, s_t, l_t)
    tok = torch.from_numpy(rng.integers(4, task.tgt_vocab, size=len(src)))
    logits, _, a, _ = task.step(tok, task.initial_state(mem), None, mem)
    memory, keys, state = net.encode(s_t.numpy(), l_t.numpy())
    prev_a = np.zeros((len(src), net.attn_size), np.float32)
    o_logits, _, o_a, _ = net.step(tok.numpy(), state, prev_a, memory, keys, l_t.numpy())
    diff = max(diff, _diff(o_logits, logits), _diff(o_a, a))
    return {"max_abs_diff": diff, "greedy_identical": bool(same),
            "checked": "greedy decodes (tokens, scores, attention) of 4 sentences, one step's logits"}


def self_check(directory: Path, config: Dict[str, Any], encoder, task) -> Dict[str, Any]:
    """Compare the export in ``directory`` with the torch ``encoder``/``task``; raise on a miss."""
    from .onnx_runtime import load_net

    _, net = load_net(directory)
    rng = np.random.default_rng(0)
    t = config["task"]
    if t == "charlm":
        res = _charlm(net, encoder, task, rng)
    elif t == "sentiment":
        res = _sentiment(net, encoder, task, rng)
    elif t == "forecast":
        res = _forecast(net, encoder, task, rng, int(config["data"]["spec"]["lookback"]))
    elif t == "asr":
        res = _asr(net, encoder, task, rng, int(config["model"]["n_mels"]))
    else:
        res = _seq2seq(net, encoder, task, rng)
    problems: List[str] = []
    if not res["max_abs_diff"] <= TOLERANCE:
        problems.append(f"max abs difference {res['max_abs_diff']:.3g} > {TOLERANCE:g}")
    if res.get("greedy_identical") is False:
        problems.append("greedy decodes differ")
    if problems:
        raise ExportError(f"{config['model']['encoder']!r} {t} export failed its self-check against torch "
                          f"({'; '.join(problems)}; checked {res['checked']}); nothing was written")
    res["tolerance"] = TOLERANCE
    return res
