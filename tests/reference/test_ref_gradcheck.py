"""Centred finite differences (float64) agree with the hand-written backward passes.

Every parameter, the input and the initial state(s) of RNN (tanh, relu), LSTM and GRU,
1 and 2 layers, uni- and bidirectional, with and without variable lengths; per tensor
max|analytic - numeric| / max|numeric| <= 1e-6.
"""

import itertools

import numpy as np
import pytest

from rnnkit.reference import (RecurrentSpec, SimpleRNN, check_gradients, cross_entropy_backward,
                              cross_entropy_forward, embedding_backward, embedding_forward,
                              linear_backward, linear_forward, numerical_gradient, relative_error)
from .helpers import make_problem, numpy_run

TOL = 1e-6


def check_sequence(spec, lengths=None, B=2, T=3, seed=0):
    params, x, state0, gy, gstate = make_problem(spec, B=B, T=T, seed=seed, lengths=lengths)
    ours = numpy_run(spec, params, x, state0, gy, gstate, lengths)

    def loss():
        return numpy_run(spec, params, x, state0, gy, gstate, lengths)["loss"]

    arrays = dict(params, x=x, **{f"state0_{i}": s for i, s in enumerate(state0)})
    analytic = dict(ours["grads"], x=ours["dx"], **{f"state0_{i}": s for i, s in enumerate(ours["dstate0"])})
    errors = check_gradients(loss, arrays, analytic)
    assert len(errors) == 4 * spec.num_layers * spec.num_directions + 1 + spec.cell_spec.n_state
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{worst}: {errors[worst]:.3g}"
    return errors


@pytest.mark.parametrize("cell,num_layers,bidirectional",
                         list(itertools.product(["rnn", "rnn-relu", "lstm", "gru"], [1, 2], [False, True])))
def test_sequence_gradients(cell, num_layers, bidirectional):
    check_sequence(RecurrentSpec(cell, input_size=2, hidden_size=3, num_layers=num_layers,
                                 bidirectional=bidirectional))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_sequence_gradients_with_lengths(cell):
    check_sequence(RecurrentSpec(cell, 2, 3, num_layers=2, bidirectional=True), lengths=np.array([4, 2]), T=4)


def test_ops_gradients():
    rng = np.random.default_rng(0)
    ids = np.array([[1, 3, 1], [0, 4, 4]])
    emb = rng.standard_normal((5, 3))
    w, b = rng.standard_normal((6, 3)), rng.standard_normal(6)
    targets = np.array([[2, 5, 0], [1, 1, 3]])

    def forward():
        e, ec = embedding_forward(ids, emb)
        z, lc = linear_forward(e, w, b)
        loss, cc = cross_entropy_forward(z, targets)
        return loss, (ec, lc, cc)

    _, (ec, lc, cc) = forward()
    dz = cross_entropy_backward(1.0, cc)
    de, dw, db = linear_backward(dz, lc)
    demb = embedding_backward(de, ec)
    errors = check_gradients(lambda: forward()[0], {"emb": emb, "w": w, "b": b},
                             {"emb": demb, "w": dw, "b": db})
    assert max(errors.values()) <= TOL, errors


def test_simple_rnn_backward():
    rnn = SimpleRNN(2, 4, np.random.default_rng(0), scale=0.5)
    xs = np.random.default_rng(1).standard_normal((3, 2))
    g = np.random.default_rng(2).standard_normal((4, 4))

    def loss():
        return float((rnn.forward(xs) * g).sum())

    loss()
    dxs, dh0, grads = rnn.backward(g)
    errors = check_gradients(loss, dict(rnn.params, xs=xs), dict(grads, xs=dxs))
    assert max(errors.values()) <= TOL, errors
    h0 = np.zeros(4)
    errors = relative_error(dh0, numerical_gradient(lambda: float((rnn.forward(xs, h0) * g).sum()), h0))
    assert errors <= TOL
