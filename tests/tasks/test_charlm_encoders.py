"""The new encoders inside the charlm task: train, sample, evaluate, with no task code that
asks which encoder it holds. Sampling steps the encoder's torch ``step()`` with its carried
state (hidden state, input buffers, key/value cache): it must equal recomputing the whole
prefix at every position.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.reference.generate import generate
from rnnkit.reference.sampling import SamplingParams, next_token
from rnnkit.tasks import charlm
from tests.util import tiny_train_args

NEW = ["mingru", "minlstm", "tcn", "transformer"]
VOCAB = [chr(ord("a") + i) for i in range(11)]


def _model(kind, seed=0):
    torch.manual_seed(seed)
    cfg = {"encoder": kind, "embedding_dim": 6, "hidden_size": 8, "num_layers": 2, "dropout": 0.0}
    enc, task = charlm.build(cfg, len(VOCAB))
    with torch.no_grad():  # larger weights than the default init: peaky, varied predictions
        for p in list(enc.parameters()) + list(task.parameters()):
            p.mul_(2.0)
    return enc.eval(), task.eval()


@pytest.mark.parametrize("temperature", [0.0, 1.0], ids=["greedy", "sampled"])
@pytest.mark.parametrize("kind", NEW)
def test_generation_with_carried_state_equals_recomputing_from_the_prefix(kind, temperature):
    enc, task = _model(kind)
    params = SamplingParams(temperature=temperature)
    text = "".join(generate(charlm.TorchStepper(enc, task), VOCAB, "abc", 25, params, seed=7))
    rng = np.random.default_rng(7)
    prefix = "abc"
    for ch in text:
        ids = torch.tensor([[VOCAB.index(c) for c in prefix]])
        with torch.no_grad():
            y, _ = enc(task.embedding(ids))
            logits = task.head(y)[0, -1].double().numpy()
        assert VOCAB[next_token(logits, rng, params)] == ch, f"diverged at {len(prefix)}"
        prefix += ch
    assert len(set(text)) > 1  # not a degenerate constant stream


@pytest.mark.parametrize("kind", NEW)
def test_make_stepper_picks_torch_for_non_recurrent_engines(kind):
    enc, task = _model(kind)
    weights = {f"encoder.{k}": v.numpy() for k, v in enc.state_dict().items()}
    weights.update({f"task.{k}": v.numpy() for k, v in task.state_dict().items()})
    cfg = {"encoder": kind, "embedding_dim": 6, "hidden_size": 8, "num_layers": 2, "dropout": 0.0}
    stepper, engine = charlm.make_stepper(weights, cfg, "auto")
    assert engine == "torch"
    with pytest.raises(ValueError, match="use --engine torch"):
        charlm.make_stepper(weights, cfg, "numpy")
    a = "".join(generate(stepper, VOCAB, "ab", 20, SamplingParams(temperature=0)))
    b = "".join(generate(charlm.TorchStepper(enc, task), VOCAB, "ab", 20, SamplingParams(temperature=0)))
    assert a == b


@pytest.mark.parametrize("kind", ["transformer", "tcn"])
def test_fixed_window_encoders_score_each_window_alone(kind):
    """score_ids must not carry a Transformer cache / TCN buffer across windows (as in training)."""
    enc, task = _model(kind)
    ids = np.random.default_rng(0).integers(0, len(VOCAB), 2 * 10 + 1)
    loss, n = charlm.score_ids(enc, task, ids, n_streams=1, seq_len=10)
    x, y = torch.from_numpy(ids[:-1].reshape(2, 10)), torch.from_numpy(ids[1:].reshape(2, 10))
    with torch.no_grad():
        out, _ = enc(task.embedding(x))  # two independent windows as a batch
        ref = torch.nn.functional.cross_entropy(task.head(out).reshape(-1, len(VOCAB)), y.reshape(-1))
    assert n == 20 and abs(loss - ref.item()) < 1e-5


@pytest.mark.parametrize("kind", NEW)
def test_cli_train_sample_evaluate(kind, tiny_corpus, tmp_path, capsys):
    out = tmp_path / kind
    assert main(tiny_train_args(tiny_corpus, out, "--encoder", kind, "--max-steps", "3",
                                "--threads", "1")) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["encoder"] == kind
    capsys.readouterr()
    assert main(["sample", str(out), "--prime", "KING", "--length", "30", "--temperature", "0"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("KING") and len(text.rstrip("\n")) == 34
    assert main(["sample", str(out), "--prime", "KING", "--length", "30", "--temperature", "0"]) == 0
    assert capsys.readouterr().out == text  # greedy is deterministic
    assert main(["evaluate", str(out), "--json", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 < result["loss"] < 10 and result["characters"] > 1000
