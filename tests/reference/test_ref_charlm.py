"""The NumPy-only char-LM trainer: checkpoint layout, torch agreement, falling loss, resume."""

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.reference import charlm, relative_error

TEXT = "the cat sat on the mat. the dog sat on the log. " * 12


def corpus():
    chars = sorted(set(TEXT))
    return np.array([chars.index(c) for c in TEXT]), len(chars)


def test_checkpoint_layout():
    params = charlm.init_charlm(11, "gru", embedding_dim=5, hidden_size=7, num_layers=2,
                                rng=np.random.default_rng(0))
    shapes = {n: p.shape for n, p in params.items()}
    assert shapes == {
        "task.embedding.weight": (11, 5),
        "encoder.weight_ih_l0": (21, 5), "encoder.weight_hh_l0": (21, 7),
        "encoder.bias_ih_l0": (21,), "encoder.bias_hh_l0": (21,),
        "encoder.weight_ih_l1": (21, 7), "encoder.weight_hh_l1": (21, 7),
        "encoder.bias_ih_l1": (21,), "encoder.bias_hh_l1": (21,),
        "task.head.weight": (11, 7), "task.head.bias": (11,),
    }
    assert all(p.dtype == np.float32 for p in params.values())
    lstm = charlm.init_charlm(11, "lstm", 5, 7, 1, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(lstm["encoder.bias_ih_l0"][7:14] + lstm["encoder.bias_hh_l0"][7:14], 1.0)


def test_loss_and_grads_match_a_torch_model():
    ids, V = corpus()
    params = charlm.init_charlm(V, "lstm", 4, 6, 2, rng=np.random.default_rng(1), dtype=np.float64)
    x, y = ids[None, :12].repeat(2, 0), ids[None, 1:13].repeat(2, 0)
    loss, grads, _ = charlm.loss_and_grads(params, "lstm", x, y)

    emb, lstm, head = torch.nn.Embedding(V, 4), torch.nn.LSTM(4, 6, 2, batch_first=True), torch.nn.Linear(6, V)
    modules = {"task.embedding.": emb, "encoder.": lstm, "task.head.": head}
    named = {}
    for prefix, m in modules.items():
        m.double()
        m.load_state_dict({n[len(prefix):]: torch.from_numpy(p) for n, p in params.items() if n.startswith(prefix)})
        named.update({prefix + n: p for n, p in m.named_parameters()})
    logits = head(lstm(emb(torch.from_numpy(x)))[0])
    tloss = F.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y).reshape(-1))
    tloss.backward()
    assert abs(loss - tloss.item()) <= 1e-12
    assert named.keys() == grads.keys()
    for n, p in named.items():
        assert relative_error(grads[n], p.grad.numpy()) <= 1e-10, n


def test_loss_falls_below_unigram_entropy():
    ids, V = corpus()
    losses = []
    params = charlm.train(ids, V, cell="lstm", embedding_dim=8, hidden_size=32, num_layers=1,
                          batch_size=4, seq_len=16, steps=150, lr=1e-2, seed=0,
                          callback=lambda step, loss: losses.append(loss))
    assert len(losses) == 150
    unigram = charlm.unigram_entropy(ids)
    assert losses[0] > 0.9 * np.log(V)  # starts near uniform
    assert np.mean(losses[-10:]) < 0.5 * unigram
    assert charlm.evaluate(params, "lstm", ids, batch_size=4, seq_len=16) < 0.5 * unigram


def test_trainer_resume_is_exact():
    ids, V = corpus()
    kw = dict(cell="gru", embedding_dim=4, hidden_size=8, num_layers=2, batch_size=2, seq_len=8, lr=5e-3)
    a = charlm.CharLMTrainer(ids, V, **kw)
    for _ in range(3):
        a.step()
    b = charlm.CharLMTrainer(ids, V, params={n: p.copy() for n, p in a.params.items()}, **kw)
    b.load_state_dict({k: np.array(v) for k, v in a.state_dict().items()})
    for _ in range(3):
        assert a.step() == b.step()
    for n in a.params:
        np.testing.assert_array_equal(a.params[n], b.params[n])


def test_one_stream_layout_for_every_engine():
    from rnnkit.reference.streams import StreamLayout
    from rnnkit.reference.streams import StreamLayout as RefLayout

    assert StreamLayout is RefLayout is charlm.StreamLayout  # one layout, not two that agree
    ids, V = corpus()
    trainer = charlm.CharLMTrainer(ids, V, cell="gru", embedding_dim=4, hidden_size=6, num_layers=1,
                                   batch_size=4, seq_len=16)
    n = trainer.layout.n_windows
    assert n == ((len(ids) - 1) // 4) // 16
    seen = []
    original = trainer.layout.window
    trainer.layout = type("Spy", (), {"n_windows": n, "window": lambda self, t, i: seen.append(i) or original(t, i)})()
    for _ in range(n + 2):
        trainer.step()
    assert seen == list(range(n)) + [0, 1]  # wraps around to the first window


def test_train_step_skips_a_non_finite_update_and_drops_the_state():
    ids, V = corpus()
    params = charlm.init_charlm(V, "lstm", 4, 6, 2, rng=np.random.default_rng(0))
    opt = charlm.Adam(params, lr=1e-2)
    x, y = ids[None, :8].repeat(2, 0), ids[None, 1:9].repeat(2, 0)
    loss, state, finite = charlm.train_step(params, "lstm", opt, x, y, clip_norm=1.0)
    assert finite and state[0].shape == (2, 2, 6) and opt.t == 1
    before = {n: p.copy() for n, p in params.items()}
    params["task.head.bias"][0] = np.inf
    with np.errstate(invalid="ignore"):
        loss, state, finite = charlm.train_step(params, "lstm", opt, x, y, state)
    assert not finite and state is None and opt.t == 1
    assert all(np.array_equal(params[n], before[n]) for n in params if n != "task.head.bias")


def test_dropout_draws_one_mask_per_layer_and_zero_dropout_changes_nothing():
    ids, V = corpus()
    params = charlm.init_charlm(V, "gru", 4, 6, 2, rng=np.random.default_rng(0), dtype=np.float64)
    x, y = ids[None, :8].repeat(3, 0), ids[None, 1:9].repeat(3, 0)
    plain = charlm.loss_and_grads(params, "gru", x, y)
    same = charlm.loss_and_grads(params, "gru", x, y, dropout=0.0, rng=np.random.default_rng(1))
    assert plain[0] == same[0]
    rng = np.random.default_rng(1)
    dropped = charlm.loss_and_grads(params, "gru", x, y, dropout=0.5, rng=rng)
    assert dropped[0] != plain[0]
    # two (B, T, H) masks were drawn: the generator moved by exactly that many numbers
    ref = np.random.default_rng(1)
    ref.random((3, 8, 6)), ref.random((3, 8, 6))
    assert rng.random() == ref.random()


def test_hand_encoder_names_are_accepted():
    ids, V = corpus()
    params = charlm.init_charlm(V, "hand-gru", 4, 6, 1, rng=np.random.default_rng(0))
    assert params["encoder.weight_hh_l0"].shape == (18, 6)
    loss, _, _ = charlm.loss_and_grads(params, "hand-gru", ids[None, :8], ids[None, 1:9])
    assert np.isfinite(loss)


def test_module_main_prints_a_curve(tmp_path, capsys):
    path = tmp_path / "tiny.txt"
    path.write_text(TEXT * 5, encoding="utf-8")
    charlm.main([str(path), "--cell", "gru", "--hidden-size", "8", "--embedding-dim", "4",
                 "--batch-size", "2", "--seq-len", "8", "--steps", "3", "--every", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[2].split() == ["step", "seconds", "train_loss", "val_loss"]
    assert [int(line.split()[0]) for line in lines[3:]] == [1, 2, 3]
