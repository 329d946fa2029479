"""NumPy engine == torch.nn.RNN/LSTM/GRU on copied weights: outputs, states, every gradient."""

import itertools

import numpy as np
import pytest
import torch

from rnnkit.reference import RecurrentSpec, relative_error
from .helpers import make_problem, numpy_run, torch_run

CELLS = ["rnn", "rnn-relu", "lstm", "gru"]
TOL = {np.float64: 1e-10, np.float32: 1e-5}


def assert_same(ours, theirs, tol):
    errors = {"y": relative_error(ours["y"], theirs["y"]), "dx": relative_error(ours["dx"], theirs["dx"])}
    for i, (a, b) in enumerate(zip(ours["state"], theirs["state"])):
        errors[f"state{i}"] = relative_error(a, b)
    for i, (a, b) in enumerate(zip(ours["dstate0"], theirs["dstate0"])):
        errors[f"dstate0_{i}"] = relative_error(a, b)
    assert ours["grads"].keys() == theirs["grads"].keys()
    for name in theirs["grads"]:
        errors[name] = relative_error(ours["grads"][name], theirs["grads"][name])
    worst = max(errors, key=errors.get)
    assert errors[worst] <= tol, f"{worst}: {errors[worst]:.3g} > {tol:g}"
    return errors[worst]


@pytest.mark.parametrize("cell,num_layers,bidirectional,dtype",
                         list(itertools.product(CELLS, [1, 2], [False, True], [np.float64, np.float32])))
def test_matches_torch(cell, num_layers, bidirectional, dtype):
    spec = RecurrentSpec(cell, input_size=3, hidden_size=5, num_layers=num_layers, bidirectional=bidirectional)
    problem = make_problem(spec, B=3, T=6, seed=1, dtype=dtype)
    ours, theirs = numpy_run(spec, *problem), torch_run(spec, *problem)
    for key in ("y", "dx"):
        assert ours[key].dtype == dtype, key
    assert all(g.dtype == dtype for g in ours["grads"].values())
    assert_same(ours, theirs, TOL[dtype])


@pytest.mark.parametrize("cell,bidirectional", list(itertools.product(CELLS, [False, True])))
def test_variable_lengths_match_packed_sequences(cell, bidirectional):
    spec = RecurrentSpec(cell, input_size=3, hidden_size=4, num_layers=2, bidirectional=bidirectional)
    lengths = np.array([5, 2, 4])
    problem = make_problem(spec, B=3, T=5, seed=2, lengths=lengths)
    ours = numpy_run(spec, *problem, lengths=lengths)
    theirs = torch_run(spec, *problem, lengths=lengths)
    assert_same(ours, theirs, 1e-10)
    # padding is inert: zero output, zero input gradient, zero dL/dh_t
    pad = np.arange(5)[None, :] >= lengths[:, None]  # (B, T)
    assert np.all(ours["y"][pad] == 0) and np.all(ours["dx"][pad] == 0)
    assert np.all(ours["dh"][:, pad] == 0)


def _torch_cell_loop(cell, params, x, num_layers, bidirectional):
    """A step-by-step torch reference that keeps every h_t, to read dL/dh_t with retain_grad."""
    cls = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[cell]
    B, T, C = x.shape
    H = params["weight_hh_l0"].shape[1]
    D = 2 if bidirectional else 1
    inp = torch.from_numpy(x)
    hs = []  # [layer*D + d][t]
    for k in range(num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            c = cls(inp.shape[2], H).double()
            c.load_state_dict({n: torch.from_numpy(params[n + sfx]) for n in
                               ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
            h = torch.zeros(B, H, dtype=torch.float64)
            state = (h, h) if cell == "lstm" else h
            steps = [None] * T
            for t in (range(T - 1, -1, -1) if d else range(T)):
                state = c(inp[:, t], state)
                h_t = state[0] if cell == "lstm" else state
                h_t.retain_grad()
                steps[t] = h_t
            hs.append(steps)
            outs.append(torch.stack(steps, dim=1))
        inp = torch.cat(outs, dim=2)
    return inp, hs


@pytest.mark.parametrize("cell,bidirectional", [("lstm", False), ("gru", True), ("rnn", True)])
def test_dh_per_step_matches_torch_retain_grad(cell, bidirectional):
    from rnnkit.reference import recurrent_backward, recurrent_forward
    spec = RecurrentSpec(cell, 3, 4, num_layers=2, bidirectional=bidirectional)
    params, x, _, gy, _ = make_problem(spec, B=2, T=5, seed=3)
    y, _, cache = recurrent_forward(spec, params, x)
    _, _, _, dh = recurrent_backward(gy, None, cache)
    yt, hs = _torch_cell_loop(cell, params, x, 2, bidirectional)
    assert relative_error(y, yt.detach().numpy()) <= 1e-12
    (yt * torch.from_numpy(gy)).sum().backward()
    expected = np.stack([np.stack([h.grad.numpy() for h in steps], axis=1) for steps in hs])  # (L*D, B, T, H)
    assert dh.shape == expected.shape
    assert relative_error(dh, expected) <= 1e-12
