"""The core install at its floor versions: the wheel with `--no-deps` in a new virtual environment holding only the oldest
torch and numpy that `settings.ini` admits (torch 2.0.1, the oldest with Python 3.11 wheels, and numpy 1.24.4), then the
selector's input tests and the UniMatch recipe's weights there. It downloads about 2.5 GB from PyPI (torch 2.0.1 brings its
CUDA 11.7 libraries), so it is marked `floor` and runs with `make test-floor`, not in `make test`; `test_wheel.py` checks
the same wheel's dependencies and import surface in seconds."""
import os, shutil, subprocess, sys, venv
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOOR = ["torch==2.0.1", "numpy==1.24.4", "pytest"]
pytestmark = pytest.mark.floor

RECIPE = """
import torch, csl_nb
g = torch.Generator().manual_seed(0)
pred_u_w = torch.randn(2, 21, 33, 33, generator=g) * 3
ignore_mask = torch.zeros(2, 33, 33, dtype=torch.long); ignore_mask[0, :, 25:] = 255
w_u = csl_nb.csl_weights(pred_u_w.softmax(dim=1), ignore_mask != 255)
reference = csl_nb.reference_csl_weights(pred_u_w.softmax(dim=1), ignore_mask != 255)
assert w_u.shape == (2, 33, 33) and float((w_u.double() - reference).abs().max()) < 1e-4
assert float(w_u[ignore_mask == 255].abs().max()) == 0.0
x_m = csl_nb.hide_reliable(torch.randn(2, 3, 33, 33), torch.stack([csl_nb.block_mask(33, 4)] * 2), w_u == 1)
import warnings
with warnings.catch_warnings(record=True) as caught:   # compile=True at the floor: the eager selector, saying why
    warnings.simplefilter("always")
    w_compiled = csl_nb.csl_weights(pred_u_w.softmax(dim=1), ignore_mask != 255, compile=True)
assert torch.equal(w_compiled, w_u) and any("needs torch" in str(w.message) for w in caught), [str(w.message) for w in caught]
print("floor", torch.__version__, csl_nb.__file__)
"""


def activated(env: Path) -> dict:
    """This process's environment variables as `source ENV/bin/activate` leaves them: the new environment's programs first on
    PATH, VIRTUAL_ENV naming it, no PYTHONPATH or PYTHONHOME (the tests may run in a venv or conda env of their own, whose
    variables would otherwise reach the floor environment's processes); the rest (pip's index and proxy settings) is kept."""
    variables = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**variables, "VIRTUAL_ENV": str(env), "PATH": os.pathsep.join([str(env / "bin"), os.environ.get("PATH", "")])}


def test_core_wheel_selects_with_the_floor_torch_and_numpy(tmp_path):
    wheel_dir = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(wheel_dir)],
                           capture_output=True, text=True, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    venv.create(tmp_path / "env", with_pip=True)   # from the base interpreter (also when this one is a venv): only its standard library
    python, env = tmp_path / "env" / "bin" / "python", activated(tmp_path / "env")
    pip = lambda *args: subprocess.run([str(python), "-m", "pip", "install", "-q", *args], capture_output=True, text=True, cwd=tmp_path, env=env)
    floor = pip(*FLOOR)
    assert floor.returncode == 0, floor.stderr[-3000:]
    core = pip("--no-deps", "--no-index", str(next(wheel_dir.glob("csl_nb-*.whl"))))
    assert core.returncode == 0, core.stderr[-3000:]
    shutil.copy(ROOT / "tests" / "test_selector_inputs.py", tmp_path)   # outside the repository: no conftest, the installed wheel
    tests = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_selector_inputs.py"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert tests.returncode == 0, tests.stdout[-3000:]
    recipe = subprocess.run([str(python), "-c", RECIPE], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert recipe.returncode == 0 and recipe.stdout.startswith("floor 2.0.1"), recipe.stderr[-3000:]
