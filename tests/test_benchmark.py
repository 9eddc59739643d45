"""The benchmark commands end to end: demo, evaluate and reproduce, with what they write parsed. The demo runs as a user
runs it (a subprocess that restarts itself with pinned CPU kernels); the other commands run in this process (conftest.py)."""
import csv, json, math, os, platform, subprocess
import pytest

PROTOCOL = ["splits=4", "seeds=0", "warm_epochs=1", "warm_iters=2", "warm_batch=2", "epochs=1", "iters=2", "batch=2"]
TINY = PROTOCOL + ["progress=false", "embedded.unlabeled=8", "embedded.val=4"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, shared_cache):
    folder = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, CSL_NB_CACHE=str(shared_cache))
    done = subprocess.run(["csl_nb", "demo", "--out", str(folder / "out"), "--jobs", "1", "--set", *TINY], capture_output=True, text=True, env=env)
    return folder, done   # --jobs 1: the default's two spawned runs would start two more interpreters (--jobs: test_jobs_… below)


@pytest.mark.slow   # the demo's own process
def test_demo_writes_a_table_that_parses(demo_run):
    folder, done = demo_run
    assert done.returncode == 0, done.stderr[-3000:]
    out = folder / "out"
    for name in ("results.md", "results.csv", "runs.json", "curves.png", "overlap.png", "selection.png", "qualitative.png", "provenance.json"):
        assert (out / name).is_file(), name
    with open(out / "results.csv") as f: rows = list(csv.DictReader(f))
    assert [r["variant"] for r in rows] == ["supervised", "unimatch", "threshold", "csl"]       # one row per variant
    for r in rows:
        assert all(math.isfinite(float(r[k])) and 0 <= float(r[k]) <= 1 for k in ("miou", "best_miou"))
        assert float(r["miou"]) <= float(r["best_miou"]) + 1e-12
        if r["variant"] != "supervised": assert 0 <= float(r["selected"]) <= 1
    runs = json.loads((out / "runs.json").read_text())
    assert set(runs["4/0"]) == {"warm", "supervised", "unimatch", "threshold", "csl"}
    assert "| csl |" in done.stdout and "no verdict" in done.stdout
    written = json.loads((out / "provenance.json").read_text())
    assert written["command"][:2] == ["csl_nb", "demo"] and len(written["commit"]) in (40, len("not a git checkout"))
    assert written["runs_trained_in"] == [str(out)]   # the runs folder its kept runs name
    if platform.machine().lower() in ("x86_64", "amd64"):   # the demo restarted itself with AVX2 kernels
        assert written["kernels_pinned"] and written["cpu_kernels"] == "AVX2" and written["mkl_cbwr"] == "COMPATIBLE", written
    check = written["fingerprint"]   # this CPU against the committed results' machine, said before training and recorded
    assert check["compared"] > 500 and check["matches"] == (check["first_difference"] is None) and check["message"] in done.stdout
    assert ("expect identical tables" if check["matches"] else "expect the same picture within the seed spread (±") in check["message"]


@pytest.mark.slow   # reads the demo's checkpoint
def test_evaluate_prints_the_per_class_table(demo_run, cache, csl_nb):
    folder, _ = demo_run
    checkpoint = folder / "out" / "split-4" / "seed-0" / "csl" / "last.pt"
    done = csl_nb("evaluate", "--checkpoint", checkpoint)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    from csl_nb.benchmark import DEMO
    from csl_nb.embedded import class_names
    assert len(lines) == len(class_names(DEMO.classes)) + 1 and lines[-1].split()[0] == "mIoU" and 0 <= float(lines[-1].split()[1]) <= 100   # a row per class, then mIoU
    (folder / "junk.pt").write_bytes(b"junk")
    bad = csl_nb("evaluate", "--checkpoint", folder / "junk.pt")
    assert bad.returncode == 2 and "cannot read the checkpoint" in bad.stderr


def test_reproduce_reports_missing_data_and_prints_commands(tmp_path, csl_nb):
    done = csl_nb("reproduce", "cityscapes", "--data-root", tmp_path / "cityscapes", "--runs", tmp_path / "runs")
    assert done.returncode == 0, done.stderr
    assert "does not exist" in done.stdout and "absent class counting 0" in done.stdout
    for method in ("csl", "unimatch", "supervised"):
        commands = [l for l in done.stdout.splitlines() if l.startswith(f"torchrun --nproc_per_node 4 -m csl_nb.cli train --config cityscapes --method {method} ")]
        assert [c.split("split=")[1].split()[0] for c in commands] == ["1_16", "1_8", "1_4", "1_2"]
    assert done.stdout.count("| UniMatch | 76.6 | 77.9 | 79.2 | 79.5 |") == 1 and "| CSL | n/a | n/a | n/a | n/a |" in done.stdout


@pytest.mark.slow   # spawned processes
def test_jobs_train_runs_side_by_side_to_the_same_histories(tmp_path, monkeypatch, cache):
    "--jobs 2 trains each run in its own process; the histories are those of the same runs trained one after another."
    from csl_nb.benchmark import Protocol, run_protocol, train_all, warm_config
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    import torch; threads = torch.get_num_threads(); torch.set_num_threads(1)   # the children's thread count: the same bits
    try:
        tiny = Protocol(splits=(4,), seeds=(0,), warm_epochs=1, warm_iters=2, warm_batch=2, epochs=1, iters=2, batch=2)
        config = {"progress": False, "embedded.unlabeled": 8, "embedded.val": 4, "device": "cpu"}
        side_by_side = run_protocol(tmp_path / "jobs", tiny, config, ("supervised", "unimatch"), jobs=2)
        in_turn = run_protocol(tmp_path / "one", tiny, config, ("supervised", "unimatch"))
    finally: torch.set_num_threads(threads)
    assert list(side_by_side[(4, 0)]) == ["warm", "supervised", "unimatch"]
    loss = lambda runs, name: runs[(4, 0)][name][-1]["losses"]["total"]
    assert [loss(side_by_side, n) for n in ("warm", "supervised", "unimatch")] == [loss(in_turn, n) for n in ("warm", "supervised", "unimatch")]
    with pytest.raises(ValueError, match="leave workers at 0"):
        train_all([warm_config(tmp_path / f"w{i}", 4, 0, tiny, {**config, "workers": 1}) for i in range(2)], jobs=2)


def test_cuda_device_without_a_gpu_is_a_clear_error(tmp_path, cache, csl_nb):
    if __import__("torch").cuda.is_available(): pytest.skip("this machine has a GPU")
    done = csl_nb("demo", "--device", "cuda", "--out", tmp_path / "out", "--set", *TINY)
    assert done.returncode == 2 and "torch sees no GPU" in done.stderr and "Traceback" not in done.stderr
    bad = csl_nb("regime", "--jobs", "0", "--out", tmp_path / "r")
    assert bad.returncode == 2 and "--jobs must be at least 1" in bad.stderr
