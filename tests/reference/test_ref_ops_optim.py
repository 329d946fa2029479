"""Embedding, linear, cross-entropy, clipping and optimizers against torch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.reference import (SGD, Adagrad, Adam, clip_grad_norm, clip_grad_value,
                              cross_entropy_backward, cross_entropy_forward, embedding_backward,
                              embedding_forward, linear_backward, linear_forward, relative_error)


def test_embedding_linear_cross_entropy_match_torch():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 7, (3, 4))
    targets = rng.integers(0, 5, (3, 4))
    targets[0, 1] = -100
    emb, w, b = rng.standard_normal((7, 6)), rng.standard_normal((5, 6)), rng.standard_normal(5)

    e, ec = embedding_forward(ids, emb)
    z, lc = linear_forward(e, w, b)
    loss, cc = cross_entropy_forward(z, targets, ignore_index=-100)
    de, dw, db = linear_backward(cross_entropy_backward(1.0, cc), lc)
    demb = embedding_backward(de, ec)

    te, tw, tb = (torch.from_numpy(a.copy()).requires_grad_(True) for a in (emb, w, b))
    tz = F.linear(F.embedding(torch.from_numpy(ids), te), tw, tb)
    tloss = F.cross_entropy(tz.reshape(-1, 5), torch.from_numpy(targets).reshape(-1), ignore_index=-100)
    tloss.backward()
    assert abs(loss - tloss.item()) <= 1e-12 * abs(loss)
    np.testing.assert_allclose(z, tz.detach().numpy(), rtol=0, atol=1e-12)
    for ours, theirs in ((demb, te.grad), (dw, tw.grad), (db, tb.grad)):
        assert relative_error(ours, theirs.numpy()) <= 1e-12


def _grads(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {"a": rng.standard_normal((3, 4)).astype(dtype), "b": rng.standard_normal(5).astype(dtype) * 3}


def _torch_params(arrays):
    out = []
    for a in arrays.values():
        p = torch.nn.Parameter(torch.zeros(a.shape, dtype=torch.float64))
        p.grad = torch.from_numpy(a.copy())
        out.append(p)
    return out


@pytest.mark.parametrize("max_norm,norm_type", [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0), (2.0, float("inf"))])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    grads = _grads(1)
    tparams = _torch_params(grads)
    total = clip_grad_norm(grads, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type)
    assert abs(total - float(ttotal)) <= 1e-12 * float(ttotal)
    for g, p in zip(grads.values(), tparams):
        assert relative_error(g, p.grad.numpy()) <= 1e-14


def test_clip_grad_value_matches_torch():
    grads = _grads(2)
    tparams = _torch_params(grads)
    clip_grad_value(grads, 0.7)
    torch.nn.utils.clip_grad_value_(tparams, 0.7)
    for g, p in zip(grads.values(), tparams):
        np.testing.assert_array_equal(g, p.grad.numpy())
    assert max(np.abs(g).max() for g in grads.values()) == 0.7


OPTIMIZERS = [
    (SGD, torch.optim.SGD, dict(lr=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.2)),
    (Adam, torch.optim.Adam, dict(lr=0.01)),
    (Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    (Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
]


@pytest.mark.parametrize("ours_cls,torch_cls,kwargs", OPTIMIZERS)
def test_optimizer_matches_torch_optim(ours_cls, torch_cls, kwargs):
    rng = np.random.default_rng(3)
    params = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    tparams = {n: torch.nn.Parameter(torch.from_numpy(p.copy())) for n, p in params.items()}
    ours = ours_cls(params, **kwargs)
    theirs = torch_cls(list(tparams.values()), **kwargs)
    for step in range(6):
        # a loss whose gradient depends on the parameters: L = Σ (p - target)² ⋅ scale
        grads = {n: 2 * (p - np.sin(step + p.size)) * (1 + step % 3) for n, p in params.items()}
        for n, tp in tparams.items():
            tp.grad = torch.from_numpy(2 * (tp.detach().numpy() - np.sin(step + tp.numel())) * (1 + step % 3))
        ours.step(grads)
        theirs.step()
        for n in params:
            assert relative_error(params[n], tparams[n].detach().numpy()) <= 1e-13, (step, n)


def test_optimizer_state_dict_round_trip_resumes_exactly():
    rng = np.random.default_rng(4)
    make = lambda: {"w": rng.standard_normal((2, 3))}  # noqa: E731
    p1 = make()
    p2 = {n: v.copy() for n, v in p1.items()}
    a, b = Adam(p1, lr=0.1), Adam(p2, lr=0.1)
    grads = [make() for _ in range(4)]
    for g in grads[:2]:
        a.step(g)
        b.step(g)
    c = Adam({n: v.copy() for n, v in p2.items()}, lr=0.1)
    c.load_state_dict({k: v.copy() for k, v in b.state_dict().items()})
    for g in grads[2:]:
        a.step(g)
        c.step(g)
    np.testing.assert_array_equal(a.params["w"], c.params["w"])
    assert c.t == 4


def test_optimizers_keep_float32():
    p = {"w": np.ones((2, 2), np.float32)}
    for opt in (SGD(p, lr=0.1, momentum=0.9), Adagrad(p), Adam(p)):
        opt.step({"w": np.full((2, 2), 0.5, np.float32)})
        assert p["w"].dtype == np.float32
    g = {"w": np.full((2, 2), 3.0, np.float32)}
    clip_grad_norm(g, 1.0)
    assert g["w"].dtype == np.float32
