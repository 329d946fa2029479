"""Reports of benchmarks/encoders.py: the one-line JSON summary, Markdown tables for
docs/benchmarks.md, and the PNG curves (tokens/s against T; µs/token and state bytes
against position)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

from rnnkit.fileio import savefig


def summary(payload: Dict[str, object]) -> Dict[str, object]:
    """The one-line JSON: the headline ratio first."""
    out: Dict[str, object] = {"benchmark": "encoders"}
    h = payload.get("headline")
    if h:
        out["mingru_vs_gru_train"] = round(h["mingru_fused_vs_gru"], 3)
        if "mingru_chunked_vs_gru" in h:
            out["mingru_chunked_vs_gru_train"] = round(h["mingru_chunked_vs_gru"], 3)
        out["gru_tokens_per_s"] = round(h["gru_tokens_per_s"])
        out["mingru_tokens_per_s"] = round(h["mingru-fused_tokens_per_s"])
    gen = payload.get("generate")
    if gen:
        pos = sorted(gen["gru"], key=int)
        out["gen_us_per_token_gru"] = round(gen["gru"][pos[-1]]["us_per_token"], 1)
        out["gen_us_per_token_mingru"] = round(gen["mingru"][pos[-1]]["us_per_token"], 1)
        out["mingru_vs_gru_generate"] = round(gen["gru"][pos[-1]]["us_per_token"]
                                              / gen["mingru"][pos[-1]]["us_per_token"], 3)
        out["gen_position"] = int(pos[-1])
    if "adding" in payload:
        out["adding_test_mse"] = {n: round(r["test_mse"], 4) for n, r in payload["adding"]["results"].items()}
    if "charlm" in payload:
        out["charlm_val_nats"] = {n: round(r["val_nats_per_char"], 4) for n, r in payload["charlm"]["results"].items()}
    if "forecast" in payload:
        out["forecast_test_mase"] = {n: round(r["test_mase"], 4) for n, r in payload["forecast"]["results"].items()}
        out["forecast_naive_mase"] = round(payload["forecast"]["naive"]["test_mase"], 4)
    if "sst2" in payload:
        out["sst2_dev_accuracy"] = {n: round(r["dev_accuracy"], 4) for n, r in payload["sst2"]["results"].items()}
    out["correct"] = True
    out["seconds"] = round(payload["seconds"], 1)
    return out


def _md_table(lines: List[str], title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Append a titled Markdown table (first column left-aligned, the others right-aligned)."""
    lines.append(f"\n{title}:\n")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in header[1:]) + " |")
    lines.extend("| " + " | ".join(str(v) for v in row) + " |" for row in rows)


def table(payload: Dict[str, object]) -> str:
    """Markdown tables of the run (for docs/benchmarks.md)."""
    lines = []
    for key, title in (("train_equal_hidden", "equal hidden size"), ("train_matched_params", "matched parameters")):
        if key not in payload:
            continue
        res = payload[key]
        Ts = list(next(iter(res.values())).keys())
        hid = payload["params"]["matched_hidden"] if key == "train_matched_params" else None
        pk = "matched" if hid else "equal"
        lines.append(f"\nTraining tokens/s (forward + backward), {title}, B={payload['settings']['B']}:\n")
        lines.append("| encoder | hidden | params | " + " | ".join(f"T={t}" for t in Ts) + " |")
        lines.append("| --- | ---: | ---: | " + " | ".join("---:" for _ in Ts) + " |")
        for n, row in res.items():
            h = hid[n] if hid else payload["settings"]["H"]
            cells = ["skipped" if v is None else f"{v:,.0f}" for v in row.values()]
            lines.append(f"| {n} | {h} | {payload['params'][pk][n]:,} | " + " | ".join(cells) + " |")
    gen = payload.get("generate", {})
    if gen:
        pos = list(next(iter(gen.values())).keys())
        lines.append("\nBatch-1 generation, µs/token (state KiB), 2 layers:\n")
        lines.append("| encoder | " + " | ".join(f"pos {p}" for p in pos) + " |")
        lines.append("| --- | " + " | ".join("---:" for _ in pos) + " |")
        for n, d in gen.items():
            lines.append(f"| {n} | " + " | ".join(f"{d[p]['us_per_token']:.0f} ({d[p]['state_bytes'] / 1024:.0f})"
                                                 for p in pos) + " |")
    if "adding" in payload:
        a = payload["adding"]
        lines.append(f"\nAdding problem, T={a['T']}, {a['seconds']:.0f} s of training each, matched parameters "
                     f"(predicting 1 scores {1 / 6:.4f}):\n")
        lines.append("| encoder | hidden | params | steps | test MSE |")
        lines.append("| --- | ---: | ---: | ---: | ---: |")
        for n, r in a["results"].items():
            lines.append(f"| {n} | {r['hidden']} | {r['params']:,} | {r['steps']} | {r['test_mse']:.4f} |")
    if "charlm" in payload:
        c = payload["charlm"]
        _md_table(lines, f"Char-LM on tinyshakespeare, {c['minutes']:g} min of training each, encoder parameters "
                  f"matched to {c['target_encoder_params']:,}",
                  ["encoder", "hidden", "layers", "encoder params", "steps", "val nats/char"],
                  [[n, r["hidden"], r["layers"], f"{r['encoder_params']:,}", r["steps"], f"{r['val_nats_per_char']:.4f}"]
                   for n, r in c["results"].items()])
    if "forecast" in payload:
        f = payload["forecast"]
        rows = [[n, r["hidden"], r["layers"], f"{r['encoder_params']:,}", r["steps"], f"{r['test_mase']:.4f}",
                 f"{r['test_mae']:.3f}"] for n, r in f["results"].items()]
        rows.append(["naive (tomorrow = today)", "–", "–", "–", "–", f"{f['naive']['test_mase']:.4f}",
                     f"{f['naive']['test_mae']:.3f}"])
        _md_table(lines, f"seattle-weather temp_max one day ahead, {f['minutes']:g} min of training each, encoder "
                  f"parameters matched to {f['target_encoder_params']:,}; {f['origins']} test origins from "
                  f"{f['test_from']}",
                  ["encoder", "hidden", "layers", "encoder params", "steps", "test MASE", "test MAE"], rows)
    if "sst2" in payload:
        c = payload["sst2"]
        _md_table(lines, f"SST-2, {c['minutes']:g} min of training each, bidirectional, encoder parameters matched to "
                  f"{c['target_encoder_params']:,}; accuracy on the {c['dev_sentences']:,} GLUE dev sentences",
                  ["encoder", "hidden", "layers", "encoder params", "steps", "dev accuracy", "macro-F1"],
                  [[n, r["hidden"], r["layers"], f"{r['encoder_params']:,}", r["steps"], f"{r['dev_accuracy']:.4f}",
                    f"{r['dev_macro_f1']:.4f}"] for n, r in c["results"].items()])
    return "\n".join(lines)


def plot(payload: Dict[str, object], out_dir, stem: str = "encoders") -> List[str]:
    """PNGs of the run's curves in ``out_dir``, each only when the run measured it:

    * ``STEM-throughput.png``: training tokens/s against T, log-log, one line per encoder;
      panels: equal hidden size, matched parameters (skipped cells are left out);
    * ``STEM-generation.png``: batch-1 µs/token and state bytes against position, log-log.

    Returns the paths written. matplotlib runs headless (Agg) and is imported here only.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: List[str] = []
    panels = [(k, t) for k, t in (("train_equal_hidden", "equal hidden size"),
                                  ("train_matched_params", "matched parameters")) if k in payload]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.4), squeeze=False)
        for ax, (key, title) in zip(axes[0], panels):
            hidden = (payload["params"]["matched_hidden"] if key == "train_matched_params"
                      else {n: payload["settings"]["H"] for n in payload[key]})
            for n, row in payload[key].items():
                pts = [(int(t), v) for t, v in row.items() if v is not None]
                if pts:
                    ax.plot(*zip(*pts), marker="o", ms=3, label=f"{n} (H={hidden[n]})")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequence length T")
            ax.set_ylabel("training tokens/s (forward + backward)")
            ax.set_title(f"{title}, B={payload['settings']['B']}, one layer", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))  # below: lines cross
        path = out_dir / f"{stem}-throughput.png"
        savefig(fig, path)  # temporary file + rename: no half-written PNG
        plt.close(fig)
        paths.append(str(path))
    gen = payload.get("generate")
    if gen:
        fig, (a_us, a_b) = plt.subplots(1, 2, figsize=(12.4, 4.4))
        for n, d in gen.items():
            pos = sorted(d, key=int)
            a_us.plot([int(p) for p in pos], [d[p]["us_per_token"] for p in pos], marker="o", ms=3, label=n)
            a_b.plot([int(p) for p in pos], [d[p]["state_bytes"] for p in pos], marker="o", ms=3, label=n)
        for ax, ylabel in ((a_us, "µs/token (batch-1 step)"), (a_b, "state bytes")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("position")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        a_us.set_title(f"generation time per token, H={payload['settings']['H']}, 2 layers", fontsize=10)
        a_b.set_title("state carried to the next token", fontsize=10)
        path = out_dir / f"{stem}-generation.png"
        savefig(fig, path)  # temporary file + rename: no half-written PNG
        plt.close(fig)
        paths.append(str(path))
    return paths
