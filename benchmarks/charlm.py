"""Char-LM benchmarks: (a) training loop overhead, (b) batch-1 generation, (c) 10-minute quality.

    python benchmarks/charlm.py --quick        # (a) + (b), <= 60 s; last line is JSON
    python benchmarks/charlm.py                # (a) + (b) with more repetitions
    python benchmarks/charlm.py --full         # also (c): 10 minutes of training on tinyshakespeare

(a) tokens/s of `rnnkit train` (its Lightning loop with all callbacks and the CSV logger)
    vs a minimal raw PyTorch loop with the same model and shapes (2-layer LSTM, hidden 512, batch 64, sequence 128, AdamW, clipping),
    interleaved round by round. ``train_ratio`` = rnnkit / raw (target >= 0.95).
(b) batch-1 generation µs/token at hidden 512, 2 layers: rnnkit's sampling path (NumPy
    runtime) vs an ``nn.LSTMCell`` loop (the best plain torch path) and naive ``nn.LSTM``
    stepping; all three produce logits and draw with the same sampler. Before timing, the
    NumPy path's logits are checked against ``nn.LSTM`` on the same weights.
    ``gen_speedup`` = LSTMCell µs / rnnkit µs (target >= 2.5).
(c) ``--full``: validation loss (nats/char) on the last 10% of tinyshakespeare after a
    10-minute training budget with configs/charlm-tinyshakespeare.yaml.
"""

from __future__ import annotations

import os
import sys

# NumPy's BLAS and torch use the same number of threads (--threads, default 2): set before
# numpy loads its thread pool. On a busy machine use --threads 1 (the 2-thread trap).
_THREADS = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--threads"), "2")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _THREADS

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, median, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------
# (a) training loop


def bench_training(rounds: int, steps: int, threads: int):
    import lightning as L
    import torch

    from rnnkit.data.datasets import corpus_path
    from rnnkit.data.text import encode_corpus
    from rnnkit.training.run import quiet_lightning

    torch.set_num_threads(threads)
    quiet_lightning()
    corpus = encode_corpus(corpus_path("tinyshakespeare"))
    train_ids, _ = corpus.split(0.1)
    B, T, H, Lyr, E = 64, 128, 512, 2, 64

    class StepTimer(L.Callback):
        def __init__(self):
            self.starts = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.starts.append(time.perf_counter())

    def rnnkit_round():
        """`rnnkit train` itself: its callbacks (checkpointing, graceful stop, schedule), CSV
        logger and data path; only the progress bar is off (no terminal here)."""
        import tempfile

        from rnnkit.training.config import build_config
        from rnnkit.training.run import train

        timer = StepTimer()
        with tempfile.TemporaryDirectory() as tmp:
            cfg = build_config({}, {
                "model": {"encoder": "lstm", "hidden_size": H, "num_layers": Lyr, "dropout": 0.0, "embedding_dim": E},
                "data": {"data": "tinyshakespeare", "batch_size": B, "seq_len": T},
                "optim": {"lr": 2e-3, "warmup_steps": 0, "schedule": "constant"},
                "run": {"out": tmp, "max_steps": steps + 2, "threads": threads, "checkpoint_every": 1000,
                        "val_every": 100000, "logger": "csv", "progress": False},
            }, task="charlm")
            train(cfg, callbacks=[timer])
        gaps = np.diff(timer.starts)[2:]  # batch start to batch start, after two warm-up steps
        return B * T / float(np.mean(gaps))

    def raw_round():
        from rnnkit.reference.streams import StreamLayout

        torch.manual_seed(0)
        emb = torch.nn.Embedding(len(corpus.vocab), E)
        lstm = torch.nn.LSTM(E, H, Lyr, batch_first=True)
        head = torch.nn.Linear(H, len(corpus.vocab))
        params = [*emb.parameters(), *lstm.parameters(), *head.parameters()]
        opt = torch.optim.AdamW(params, lr=2e-3)
        layout = StreamLayout(len(train_ids), B, T)
        state = None
        times = []
        for i in range(steps + 2):
            t0 = time.perf_counter()
            x, y = layout.window(train_ids, i)
            x, y = torch.from_numpy(x), torch.from_numpy(y)
            out, state = lstm(emb(x), state)
            loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, head.out_features), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            state = tuple(s.detach() for s in state)
            times.append(time.perf_counter() - t0)
        return B * T / float(np.mean(times[2:]))

    rk, raw = [], []
    for r in range(rounds):
        raw.append(raw_round())
        rk.append(rnnkit_round())
        print(f"  (a) round {r + 1}: raw {raw[-1]:.0f} tok/s, rnnkit {rk[-1]:.0f} tok/s", file=sys.stderr, flush=True)
    ratios = [a / b for a, b in zip(rk, raw)]
    return {"shape": {"batch": B, "seq_len": T, "hidden": H, "layers": Lyr}, "raw_tok_s": raw,
            "rnnkit_tok_s": rk, "ratios": ratios, "train_ratio": median(ratios)}


# ---------------------------------------------------------------------------------------
# (b) batch-1 generation


def bench_generation(tokens: int, rounds: int, threads: int, hidden: int = 512, layers: int = 2):
    import torch

    from rnnkit.reference.runtime import RecurrentLMRuntime
    from rnnkit.reference.sampling import SamplingParams, next_token

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    V, E = 65, 64
    emb = torch.nn.Embedding(V, E)
    lstm = torch.nn.LSTM(E, hidden, layers, batch_first=True).eval()
    head = torch.nn.Linear(hidden, V)
    weights = {"task.embedding.weight": emb.weight.detach().numpy(), "task.head.weight": head.weight.detach().numpy(),
               "task.head.bias": head.bias.detach().numpy()}
    weights.update({f"encoder.{k}": v.numpy() for k, v in lstm.state_dict().items()})
    runtime = RecurrentLMRuntime(weights, "lstm", layers)

    # correctness first: the NumPy path equals nn.LSTM on the same weights
    toks = torch.randint(0, V, (1, 64))
    with torch.no_grad():
        ref = head(lstm(emb(toks))[0])[0].numpy()
    st, got = None, []
    for t in toks[0].tolist():
        lg, st = runtime.step(t, st)
        got.append(lg)
    max_err = float(np.abs(np.stack(got) - ref).max())
    assert max_err < 1e-4, f"NumPy runtime disagrees with nn.LSTM: {max_err}"

    cells = [torch.nn.LSTMCell(E if k == 0 else hidden, hidden) for k in range(layers)]
    with torch.no_grad():
        for k, c in enumerate(cells):
            c.weight_ih.copy_(getattr(lstm, f"weight_ih_l{k}"))
            c.weight_hh.copy_(getattr(lstm, f"weight_hh_l{k}"))
            c.bias_ih.copy_(getattr(lstm, f"bias_ih_l{k}"))
            c.bias_hh.copy_(getattr(lstm, f"bias_hh_l{k}"))
    params = SamplingParams(temperature=0.8)

    def run_numpy(n):
        rng = np.random.default_rng(0)
        tok, st = 0, None
        t0 = time.perf_counter()
        for _ in range(n):
            lg, st = runtime.step(tok, st)
            tok = next_token(lg, rng, params)
        return (time.perf_counter() - t0) / n * 1e6

    @torch.inference_mode()
    def run_cells(n):
        rng = np.random.default_rng(0)
        tok = 0
        hs = [(torch.zeros(1, hidden), torch.zeros(1, hidden)) for _ in cells]
        t0 = time.perf_counter()
        for _ in range(n):
            x = emb.weight[tok][None]
            for k, c in enumerate(cells):
                hs[k] = c(x, hs[k])
                x = hs[k][0]
            tok = next_token(head(x)[0].numpy(), rng, params)
        return (time.perf_counter() - t0) / n * 1e6

    @torch.inference_mode()
    def run_nn_lstm(n):
        rng = np.random.default_rng(0)
        tok, st = 0, None
        t0 = time.perf_counter()
        for _ in range(n):
            y, st = lstm(emb.weight[tok][None, None], st)
            tok = next_token(head(y[0, 0]).numpy(), rng, params)
        return (time.perf_counter() - t0) / n * 1e6

    for f in (run_numpy, run_cells, run_nn_lstm):
        f(50)  # warm-up
    res = {"numpy": [], "lstmcell": [], "nn_lstm": []}
    for _ in range(rounds):
        res["numpy"].append(run_numpy(tokens))
        res["lstmcell"].append(run_cells(tokens))
        res["nn_lstm"].append(run_nn_lstm(max(20, tokens // 10)))
    med = {k: median(v) for k, v in res.items()}
    return {"hidden": hidden, "layers": layers, "us_per_token": res, "median_us_per_token": med,
            "max_abs_logit_error": max_err, "gen_speedup": med["lstmcell"] / med["numpy"],
            "speedup_vs_nn_lstm": med["nn_lstm"] / med["numpy"]}


# ---------------------------------------------------------------------------------------
# (c) quality after a 10-minute budget


FULL_COMMAND = ["rnnkit", "train", "charlm", "--config", "configs/charlm-tinyshakespeare.yaml",
                "--max-time", "10", "--threads", "2", "--no-progress", "--overwrite"]


def bench_full(out: Path):
    cmd = [sys.executable, "-m", "rnnkit.cli.main"] + FULL_COMMAND[1:] + ["--out", str(out)]
    t0 = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT)
    wall = time.time() - t0
    ev = subprocess.run([sys.executable, "-m", "rnnkit.cli.main", "evaluate", str(out), "--data",
                         "tinyshakespeare", "--json"], check=True, capture_output=True, text=True, cwd=ROOT)
    result = json.loads(ev.stdout.strip().splitlines()[-1])
    cfg = json.loads((out / "config.json").read_text())
    return {"command": " ".join(FULL_COMMAND + ["--out", "DIR"]), "wall_s": wall, "global_step": cfg.get("global_step"),
            "val_loss": result["loss"], "val_bpc": result["bits_per_char"], "characters": result["characters"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="<= 60 s: fewer rounds and steps")
    ap.add_argument("--full", action="store_true", help="also run (c), the 10-minute training budget")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="checkpoint dir for --full (default: a temp dir)")
    args = ap.parse_args()
    t0 = time.time()
    gen = bench_generation(tokens=300 if args.quick else 1500, rounds=3 if args.quick else 5, threads=args.threads)
    print(f"  (b) µs/token: numpy {gen['median_us_per_token']['numpy']:.0f}, LSTMCell "
          f"{gen['median_us_per_token']['lstmcell']:.0f}, nn.LSTM {gen['median_us_per_token']['nn_lstm']:.0f}",
          file=sys.stderr, flush=True)
    train = bench_training(rounds=2 if args.quick else 4, steps=6 if args.quick else 15, threads=args.threads)
    payload = {"benchmark": "charlm", "machine": machine(), "quick": args.quick,
               "training": train, "generation": gen}
    if args.full:
        with tempfile.TemporaryDirectory() as tmp:
            payload["full"] = bench_full(args.out or Path(tmp) / "run")
    payload["elapsed_s"] = time.time() - t0
    path = write_json("charlm-quick" if args.quick else ("charlm-full" if args.full else "charlm"), payload)
    print(f"  wrote {path}", file=sys.stderr)
    summary = {"train_ratio": round(train["train_ratio"], 4), "gen_speedup": round(gen["gen_speedup"], 3),
               "gen_us_per_token": round(gen["median_us_per_token"]["numpy"], 1),
               "lstmcell_us_per_token": round(gen["median_us_per_token"]["lstmcell"], 1),
               "nn_lstm_us_per_token": round(gen["median_us_per_token"]["nn_lstm"], 1),
               "elapsed_s": round(payload["elapsed_s"], 1)}
    if "full" in payload:
        summary["val_loss_10min"] = round(payload["full"]["val_loss"], 4)
    emit(summary)


if __name__ == "__main__":
    main()
