"""The benchmark commands end to end: demo, evaluate and reproduce, as a user runs them."""
import os, subprocess
import pytest

TINY = ["epochs=1", "iters_per_epoch=2", "batch_size=2", "progress=false", "embedded.labeled=4", "embedded.unlabeled=8", "embedded.val=4"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, CSL_NB_CACHE=str(folder / "cache"))
    done = subprocess.run(["csl_nb", "demo", "--out", str(folder / "out"), "--set", *TINY], capture_output=True, text=True, env=env)
    return folder, env, done


def test_demo_writes_table_and_figures(demo_run):
    folder, _, done = demo_run
    assert done.returncode == 0, done.stderr[-3000:]
    out = folder / "out"
    for name in ("results.md", "results.csv", "curves.png", "overlap.png", "selection.png", "qualitative.png"):
        assert (out / name).is_file(), name
    table = (out / "results.md").read_text()
    for variant in ("supervised", "threshold", "csl-no-tmp", "csl"): assert f"| {variant} |" in table
    assert "| csl |" in done.stdout


def test_evaluate_prints_the_per_class_table(demo_run):
    folder, env, _ = demo_run
    done = subprocess.run(["csl_nb", "evaluate", "--checkpoint", str(folder / "out" / "csl" / "last.pt")], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Ankle boot" in done.stdout and "mIoU" in done.stdout
    (folder / "junk.pt").write_bytes(b"junk")
    bad = subprocess.run(["csl_nb", "evaluate", "--checkpoint", str(folder / "junk.pt")], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "cannot read the checkpoint" in bad.stderr


def test_reproduce_reports_missing_data_and_prints_commands(tmp_path):
    done = subprocess.run(["csl_nb", "reproduce", "cityscapes", "--data-root", str(tmp_path / "cityscapes"), "--runs", str(tmp_path / "runs")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "does not exist" in done.stdout
    assert done.stdout.count("torchrun --nproc_per_node 4 -m csl_nb.cli train --config cityscapes") == 4
    assert "| UniMatch | 76.6 | 77.9 | 79.2 | 79.5 |" in done.stdout and "| CSL | n/a | n/a | n/a | n/a |" in done.stdout
