"""The built wheel, installed into a fresh virtual environment outside the repository: the package and its data travel
in the wheel (configs, split lists, the embedded set's source, the MobileNetV2 weights), not from the checkout.

The environment reuses the installed packages of the interpreter running the tests (a `.pth` file naming its site
folders; `--system-site-packages` would name the base interpreter's, without torch when the tests run in a venv or a conda
env): nothing is downloaded, and the wheel itself is installed with `--no-deps --no-index`."""
import site, subprocess, sys, venv
from pathlib import Path
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    "(python of a fresh venv holding the built wheel, a working folder outside the repository)."
    work = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(work / "dist")],
                           capture_output=True, text=True, cwd=work)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((work / "dist").glob("csl_nb-*.whl"))
    venv.create(work / "env", with_pip=False)   # this pip installs into it (--python): no ensurepip
    python = work / "env" / "bin" / "python"
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--force-reinstall", str(wheel)],
                          capture_output=True, text=True, cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    see_running_packages(python)
    return python, work


def running_site_folders() -> list:
    "The site folders of the interpreter running the tests: a venv's or conda env's own (and its base's where it sees them), the user's where enabled."
    folders = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
    return [folder for folder in folders if Path(folder).is_dir()]


def see_running_packages(python: Path):
    """Let the environment of `python` import the running interpreter's packages (torch, numpy, …) after its own.

    A `.pth` file in its site-packages calls `site.addsitedir` on each of our site folders, which appends them to `sys.path`
    (and runs their `.pth` files) after the environment's own site-packages: the installed wheel comes first. The checkout's
    editable install (`__editable__.csl_nb-*.pth`) only appends its finder to `sys.meta_path`, behind the path finder that
    finds the wheel, so it never shadows it; the tests check that `csl_nb.__file__` lies in the new environment."""
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True, text=True, check=True)
    line = f"import site; list(map(site.addsitedir, {running_site_folders()!r}))\n"   # one line, run by `site` (a comprehension would not see `site`)
    (Path(purelib.stdout.strip()) / "_running_interpreter_packages.pth").write_text(line)


def run(python, work, *args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=work,
                          env={"PATH": f"{python.parent}:/usr/bin:/bin", "CSL_NB_CACHE": str(work / "cache"), "HOME": str(work)})


def test_the_wheel_installs_its_package_data_and_console_script(installed):
    """One interpreter of the new environment (a start-up costs seconds here): the package is the installed wheel, not the
    checkout; its data (embedded set, configs, MobileNetV2 weights) is package data; the installed `csl_nb` console script
    (executed as the shell would run it, in that interpreter) runs `select` on a saved tensor."""
    python, work = installed
    probs = torch.softmax(torch.randn(2, 5, 16, 16, generator=torch.Generator().manual_seed(0)) * 3, 1)
    torch.save(probs, work / "probs.pt")
    script = python.parent / "csl_nb"
    code = ("import csl_nb, torch, runpy, sys; print(csl_nb.__file__); from csl_nb.datasets import embedded_datasets; from csl_nb.embedded import EmbeddedSpec, ASSETS; "
            "from csl_nb.config import load_config; from csl_nb.model import mobilenet_v2_imagenet; "
            "sets = embedded_datasets(spec=EmbeddedSpec(labeled=2, unlabeled=2, val=1)); first = sets['labeled'][0]; "
            "from pathlib import Path; print(ASSETS.resolve().is_relative_to(Path(csl_nb.__path__[0]).resolve()), tuple(first['image'].shape), int(first['mask'][first['mask'] != 255].max()) < 11, "
            "load_config('pascal_classic', {'data_root': 'd'}).conf_thresh, len(mobilenet_v2_imagenet())); "
            f"sys.argv = [{str(script)!r}, 'select', {str(work / 'probs.pt')!r}, '--out', {str(work / 'selection')!r}]; "
            f"runpy.run_path({str(script)!r}, run_name='__main__')")
    done = run(python, work, python, "-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    location, *found = done.stdout.split()[:8]
    assert location.startswith(str(work / "env")) and str(ROOT) not in location
    assert found == ["True", "(3,", "64,", "64)", "True", "0.95", "314"], done.stdout
    weights = torch.load(work / "selection" / "weights.pt")
    assert weights.shape == (2, 16, 16) and ((weights >= 0) & (weights <= 1)).all() and (weights == 1).any()


CORE_IMPORTS = ("torchvision", "matplotlib", "scipy", "yaml", "sklearn", "cvxpy", "tqdm", "PIL")


def test_the_core_install_needs_torch_and_numpy_alone(installed):
    """`pip install csl_nb` asks for torch and numpy only (the rest sits in the extras), and `import csl_nb` with the
    selector, TMP's masking and a CSL selection loads none of the extras' packages beyond what `import torch` loads itself
    (torch imports tqdm where it is installed; `make test-floor` runs the same wheel
    with the floor versions and nothing else installed)."""
    python, work = installed
    code = ("import importlib.metadata as m, json, sys, torch; before = set(sys.modules); import csl_nb; "
            "csl_nb.hide_reliable(torch.zeros(1, 3, 4, 4), csl_nb.block_mask(4, 2)[None], csl_nb.csl_select(torch.full((1, 2, 4, 4), 0.5), torch.ones(1, 4, 4, dtype=torch.bool)).reliable); "
            f"print(json.dumps(dict(requires=m.requires('csl_nb'), loaded=sorted(p for p in {CORE_IMPORTS!r} if p in sys.modules and p not in before))))")
    done = run(python, work, python, "-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    import json
    found = json.loads(done.stdout.strip().splitlines()[-1])
    core = sorted(r.split(">")[0].split("=")[0].strip() for r in found["requires"] if "extra ==" not in r)
    extras = {r.split("extra ==")[1].strip().strip('"') for r in found["requires"] if "extra ==" in r}
    assert core == ["numpy", "torch"] and {"train", "tutorial", "dev"} <= extras, found["requires"]
    assert found["loaded"] == [], found["loaded"]
