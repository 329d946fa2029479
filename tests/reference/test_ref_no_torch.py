"""The reference engine works where torch cannot be imported."""

import ast
import pathlib
import subprocess
import sys

import pytest

import rnnkit.reference

PACKAGE_DIR = pathlib.Path(rnnkit.reference.__file__).parent

BLOCKERS = {
    "meta_path": """
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked by this test")
sys.meta_path.insert(0, _NoTorch())
""",
    "sys_modules_none": "sys.modules['torch'] = None\n",
}

PROGRAM = """
import importlib, pkgutil, sys
{blocker}
try:
    import torch  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("torch is still importable: the blocker does not work")
import numpy as np
import rnnkit
import rnnkit.reference as ref
for m in pkgutil.iter_modules(ref.__path__):
    importlib.import_module("rnnkit.reference." + m.name)
spec = ref.RecurrentSpec("lstm", 2, 3, num_layers=2, bidirectional=True)
params = ref.init_params(spec, np.random.default_rng(0))
y, state, cache = ref.recurrent_forward(spec, params, np.ones((1, 4, 2)))
dx, dstate0, grads, dh = ref.recurrent_backward(np.ones_like(y), None, cache)
assert dx.shape == (1, 4, 2) and len(grads) == 16
leaked = sorted(m for m, mod in sys.modules.items()
                if (m == "torch" or m.startswith("torch.")) and mod is not None)
assert not leaked, leaked
print("ok without torch")
"""


@pytest.mark.parametrize("how", sorted(BLOCKERS))
def test_import_and_run_without_torch(how):
    result = subprocess.run([sys.executable, "-c", PROGRAM.format(blocker=BLOCKERS[how])],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ok without torch" in result.stdout


# The engine's own modules: NumPy and the standard library only. Every module of the
# package (the runtime, sampling and generation ones too) must stay free of torch.
ENGINE_MODULES = {"__init__.py", "base.py", "charlm.py", "gradcheck.py", "gru.py", "lstm.py",
                  "ops.py", "optim.py", "rnn.py", "sequence.py"}


def test_no_module_of_the_engine_imports_torch():
    assert ENGINE_MODULES <= {p.name for p in PACKAGE_DIR.glob("*.py")}
    allowed = {"numpy", "__future__"} | set(sys.stdlib_module_names)
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top not in {"torch", "lightning", "rnnkit"}, f"{path.name} imports {name}"
                if path.name in ENGINE_MODULES:
                    assert top in allowed, f"{path.name} imports {name}: NumPy and the stdlib only"
