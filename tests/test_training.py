"""Training runs that do not belong in a tutorial: two DDP processes, a killed and resumed run, a diverging run."""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch
import yaml

TINY = dict(dataset="embedded", model="deeplabv3plus-resnet18-light", pretrained=False, epochs=2, batch_size=2, iters_per_epoch=3,
            lr=0.01, progress=False, embedded=dict(labeled=4, unlabeled=8, val=4), augment=dict(crop=64, tmp_block=8))


@pytest.fixture
def env(tmp_path):
    environment = dict(os.environ, CSL_NB_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    return environment


def config(tmp_path, **changes):
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def csl_nb(*args, env, **kw):
    return subprocess.run(["csl_nb", *map(str, args)], capture_output=True, text=True, env=env, **kw)


def weights(run: Path) -> dict:
    return torch.load(run / "last.pt", map_location="cpu", weights_only=True)


def test_two_ddp_processes_on_cpu(tmp_path, env):
    out = tmp_path / "ddp"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "csl_nb.cli", "train", "--config", config(tmp_path, epochs=1), "--out", out],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1                                            # written once, by rank 0
    # the logged mIoU is the sum over both ranks' halves of val: it equals a single-process evaluation of the saved model
    from csl_nb.datasets import embedded_datasets, AugmentConfig
    from csl_nb.embedded import EmbeddedSpec
    from csl_nb.evaluate import evaluate
    from csl_nb.model import build_model
    os.environ["CSL_NB_CACHE"] = env["CSL_NB_CACHE"]
    val = embedded_datasets(AugmentConfig(crop=64, tmp_block=8), EmbeddedSpec(labeled=4, unlabeled=8, val=4))["val"]
    model = build_model("deeplabv3plus-resnet18-light", 11)
    model.load_state_dict(weights(out)["model"])
    single = evaluate(model, torch.utils.data.DataLoader(val, batch_size=4), 11, progress=False)
    assert abs(single["miou"] - log[0]["val"]["miou"]) < 1e-9


def test_killed_run_resumes_to_the_same_result(tmp_path, env):
    cfg = config(tmp_path, epochs=3)
    straight = csl_nb("train", "--config", cfg, "--out", tmp_path / "straight", env=env)
    assert straight.returncode == 0, straight.stderr[-2000:]
    run = tmp_path / "killed"
    process = subprocess.Popen(["csl_nb", "train", "--config", str(cfg), "--out", str(run)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (run / "last.pt").exists() and time.time() < deadline and process.poll() is None: time.sleep(0.05)
    process.send_signal(signal.SIGKILL); process.wait()
    assert (run / "last.pt").exists(), "the run ended before it could be killed"
    epochs_before = weights(run)["epoch"]
    resumed = csl_nb("train", "--config", cfg, "--out", run, "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = weights(tmp_path / "straight"), weights(run)
    assert a["epoch"] == b["epoch"] == 3 and epochs_before < 3
    for name in a["model"]: assert torch.equal(a["model"][name], b["model"][name]), name
    assert not list(run.glob(".*.tmp"))                             # no temporary checkpoint left behind
    assert len((run / "log.jsonl").read_text().splitlines()) == 3   # one line per epoch, none lost or doubled


def test_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, env):
    cfg = config(tmp_path, epochs=3)
    run = tmp_path / "run"
    first = csl_nb("train", "--config", cfg, "--out", run, "--set", "epochs=3", env=env, timeout=600)
    assert first.returncode == 0
    good = (run / "last.pt").read_bytes()
    shutil.copy(run / "last.pt", tmp_path / "epoch3.pt")
    diverging = config(tmp_path, epochs=5, lr=1e30)
    done = csl_nb("train", "--config", diverging, "--out", run, "--resume", env=env)
    assert done.returncode == 2
    assert "loss is" in done.stderr and "batch ids" in done.stderr and "last good checkpoint" in done.stderr
    assert (run / "last.pt").read_bytes() == good


def test_unknown_config_key_lists_valid_ones(tmp_path, env):
    done = csl_nb("train", "--config", config(tmp_path), "--set", "learning_rate=0.1", env=env)
    assert done.returncode == 2 and "unknown config key(s) ['learning_rate']" in done.stderr and "valid keys" in done.stderr


@pytest.mark.parametrize("method", ["csl", "threshold"])
def test_bf16_autocast_trains_on_cpu(tmp_path, env, method):
    "The bf16 path (autocast around the whole step) runs; on a GPU the same code trains the paper's configs."
    out = tmp_path / f"bf16-{method}"
    done = csl_nb("train", "--config", config(tmp_path, epochs=1, amp="bf16"), "--method", method, "--out", out, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    log = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert all(map(lambda v: v == v and abs(v) < 1e6, log["losses"].values())), log["losses"]
    assert 0 <= log["val"]["miou"] <= 1
