"""What a killed, concurrent or careless run leaves behind: a process killed between its checkpoint and its log, or between
`best.pt` and `last.pt`, two runs or two benches on one folder, and a table run whose finished runs no longer match its
`--set`. The kills are real (SIGKILL at a chosen point of the saving code, in a subprocess)."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch
import yaml

TINY = dict(dataset="embedded", model="deeplabv3plus-resnet18-light", pretrained=False, epochs=2, batch_size=2, iters_per_epoch=2,
            lr=0.01, progress=False, embedded=dict(labeled=4, unlabeled=8, val=4), augment=dict(crop=64, tmp_block=8))
pytestmark = pytest.mark.slow   # each test trains tiny runs in subprocesses


@pytest.fixture
def env(cache):
    return dict(os.environ, CSL_NB_CACHE=str(cache), OMP_NUM_THREADS="1")


def tiny_yaml(tmp_path, **changes) -> Path:
    path = tmp_path / f"tiny-{len(list(tmp_path.glob('tiny-*')))}.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def python(code:str, env:dict, **kwargs):
    "Start `python -c code` (no output kept)."
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kwargs)


def killed_at(point:str, config:Path, out:Path, env:dict) -> int:
    """Train `config` into `out` in a subprocess that SIGKILLs itself at `point` of epoch 2's saving: 'before-log' (last.pt
    written, log.jsonl not) or 'before-last' (best.pt written, last.pt not). Its exit status."""
    code = f"""
import os, signal
import csl_nb.train as trainer
from csl_nb.config import load_config
cfg = load_config({str(config)!r}, {{"out": {str(out)!r}}})
save_atomic, write_log = trainer.save_atomic, trainer.write_log
def log_then_maybe_die(folder, history):
    if {point!r} == "before-log" and len(history) == 2: os.kill(os.getpid(), signal.SIGKILL)
    write_log(folder, history)
def save_then_maybe_die(obj, path):
    if {point!r} == "before-last" and obj["epoch"] == 2 and path.name == "last.pt": os.kill(os.getpid(), signal.SIGKILL)
    save_atomic(obj, path)
trainer.write_log, trainer.save_atomic = log_then_maybe_die, save_then_maybe_die
trainer.train(cfg)
"""
    process = python(code, env); process.wait(timeout=600)
    return process.returncode


def epochs_in(path:Path) -> int: return len(path.read_text().splitlines())


def test_a_run_killed_between_its_checkpoint_and_its_log_is_repaired_by_the_next_start(tmp_path, env, csl_nb, monkeypatch):
    config, run = tiny_yaml(tmp_path), tmp_path / "run"
    assert killed_at("before-log", config, run, env) == -signal.SIGKILL
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 2 and epochs_in(run / "log.jsonl") == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    resumed = csl_nb("train", "--config", config, "--out", run, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "disagrees with the run's checkpoint (2 epochs): rewritten from it" in resumed.stderr and "already complete" in resumed.stderr
    history = torch.load(run / "last.pt", weights_only=True)["history"]
    assert [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()] == json.loads(json.dumps(history))


def test_a_run_killed_between_best_and_last_repeats_that_epoch_to_the_same_result(tmp_path, env, csl_nb, monkeypatch):
    config = tiny_yaml(tmp_path)
    assert killed_at("before-last", config, tmp_path / "run", env) == -signal.SIGKILL
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["epoch"] == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert csl_nb("train", "--config", config, "--out", tmp_path / "run", "--resume").returncode == 0
    assert csl_nb("train", "--config", config, "--out", tmp_path / "straight").returncode == 0
    for name in ("last.pt", "best.pt"):
        a, b = (torch.load(tmp_path / run / name, weights_only=True) for run in ("run", "straight"))
        assert a["epoch"] == b["epoch"] and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), name
    assert epochs_in(tmp_path / "run" / "log.jsonl") == 2


def wait_for_lock(folder:Path, process, seconds:float=300):
    "Wait until `process` holds `folder` (its lock file names it)."
    lock, deadline = folder / ".csl_nb.lock", time.time() + seconds
    while time.time() < deadline and process.poll() is None:
        if lock.is_file() and f'"pid": {process.pid}' in lock.read_text(): return
        time.sleep(0.05)
    raise AssertionError(f"the first process never held {folder}: {process.stderr.read() if process.poll() is not None else ''}")


def test_a_second_run_on_the_same_out_stops_naming_the_first(tmp_path, env, csl_nb, monkeypatch):
    config, run = tiny_yaml(tmp_path, epochs=3), tmp_path / "run"
    first = subprocess.Popen(["csl_nb", "train", "--config", str(config), "--out", str(run)], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    wait_for_lock(run, first)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    second = csl_nb("train", "--config", config, "--out", run, "--resume")
    assert second.returncode == 2 and f"{run} is in use by process {first.pid} on" in second.stderr and "Traceback" not in second.stderr, second.stderr
    assert first.wait(timeout=600) == 0, first.stderr.read()
    assert epochs_in(run / "log.jsonl") == 3 and not (run / ".csl_nb.lock").exists()   # one writer: three lines, none doubled


BENCH = """
import sys
from pathlib import Path
from csl_nb.benchmark import bench, Protocol
tiny = Protocol(splits=(4,), seeds=(0, 1), warm_epochs=0, epochs=2, iters=2, batch=2)
bench(Path(sys.argv[1]), {"progress": False, "embedded.unlabeled": 8, "embedded.val": 4}, protocol=tiny, variants=("threshold", "csl"))
"""


def test_two_benches_on_one_out_the_second_stops_and_one_rerun_completes_the_report(tmp_path, env):
    out = tmp_path / "bench"
    run = lambda: subprocess.Popen([sys.executable, "-c", BENCH, str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = run(); wait_for_lock(out, first)
    second = run(); assert second.wait(timeout=120) == 1
    said = second.stderr.read()
    assert f"FolderBusy: {out} is in use by process {first.pid}" in said, said
    assert first.wait(timeout=900) == 0, first.stderr.read()
    trained = {path: path.stat().st_mtime_ns for path in out.glob("split-4/seed-*/*/last.pt")}
    again = run(); assert again.wait(timeout=300) == 0, again.stderr.read()
    assert len(trained) == 4 and {path: path.stat().st_mtime_ns for path in trained} == trained   # nothing trained twice
    report = (out / "results.md").read_text()
    assert "**Partial" not in report and report.count("| 4 | ") >= 4
    histories = json.loads((out / "runs.json").read_text())
    assert {key: sorted(runs) for key, runs in histories.items()} == {"4/0": ["csl", "threshold"], "4/1": ["csl", "threshold"]}
    assert all(len(history) == 2 for runs in histories.values() for history in runs.values())


def test_a_table_run_skips_only_runs_of_its_own_config(tmp_path, env, capsys):
    "`reproduce --run`'s per-run step on an embedded run: trained, then skipped, then named as another config after a --set changed."
    from csl_nb.reproduce import train_table_run, train_argv_config, RunStopped
    config, folder = tiny_yaml(tmp_path, epochs=1), tmp_path / "runs" / "t" / "supervised-x"
    argv = lambda *more: ["python", "-m", "csl_nb.cli", "train", "--config", str(config), "--method", "supervised", "--out", str(folder), "--set", *more]
    os.environ["CSL_NB_CACHE"] = env["CSL_NB_CACHE"]
    train_table_run(folder, argv(), train_argv_config(argv()))
    assert (folder / "last.pt").is_file()
    capsys.readouterr()
    train_table_run(folder, argv(), train_argv_config(argv()))
    assert f"{folder}: finished, skipped" in capsys.readouterr().out
    train_table_run(folder, argv("lr=0.02"), train_argv_config(argv("lr=0.02")))
    said = capsys.readouterr().out
    assert "holds a run with another config (lr: 0.01 → 0.02): skipped" in said and "pass another --runs folder" in said
    elsewhere = tmp_path / "runs" / "t" / "broken"
    broken = argv("augment.crop=400")   # a crop larger than the scenes: the run's process stops before its first epoch
    broken[broken.index(str(folder))] = str(elsewhere)
    with pytest.raises(RunStopped, match="no epoch of it was saved: the same command starts it again"):
        train_table_run(elsewhere, broken, train_argv_config(broken))
