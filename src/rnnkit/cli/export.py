"""``rnnkit export``: a checkpoint's networks as ONNX graphs that onnxruntime runs without torch."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import positive_int


def register(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX (runs without torch)",
                       description="Export a checkpoint's networks as ONNX graphs with config.json and sha256s, "
                                   "self-checked against the torch model on synthetic inputs. "
                                   "rnnkit.load(OUT) then runs them in onnxruntime (docs/export.md).")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory (an --out of train, or checkpoints/...)")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="exchange format (default: onnx)")
    p.add_argument("--out", required=True, metavar="DIR", help="export directory to create")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the self-check against the torch model (not recommended)")
    p.add_argument("--threads", type=positive_int("--threads"), default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from ..export.onnx_runtime import is_export

    if Path(args.checkpoint).resolve() == Path(args.out).resolve():
        from ..errors import ConfigError

        raise ConfigError(f"--out {args.out}: is the checkpoint itself; choose another directory")
    if is_export(args.checkpoint):
        from ..errors import ExportError

        raise ExportError(f"{args.checkpoint}: already an ONNX export; export the checkpoint it came from")
    from ..export.onnx_runtime import require

    for module in ("onnx", "onnxruntime"):  # writing needs onnx; the self-check runs onnxruntime
        require(module, "rnnkit export")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ..export.onnx_export import export_onnx

    section = export_onnx(Path(args.checkpoint), Path(args.out), overwrite=args.overwrite, check=args.check)
    check = section.get("self_check")
    line = f"exported {', '.join(section['files'])} to {args.out} (opset {section['opset']}"
    if check:
        line += f"; self-check max abs diff {check['max_abs_diff']:.2g}"
        if "greedy_identical" in check:
            line += ", greedy decodes identical"
    print(line + ")", file=sys.stdout)
    return 0
