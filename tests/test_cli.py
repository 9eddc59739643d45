"""The `csl_nb` command end to end — its `main` in this process (conftest.py; test_wheel.py runs the installed console
script) — and its answers to bad input."""
import json, sys
from pathlib import Path
import numpy as np
import pytest
import torch

import csl_nb as package


@pytest.fixture
def probs_file(tmp_path):
    probs = torch.softmax(4 * torch.randn(3, 6, 20, 28, generator=torch.Generator().manual_seed(0)), 1)
    path = tmp_path / "probs.pt"
    torch.save(probs, path)
    return path, probs


def test_version(csl_nb):
    done = csl_nb("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"csl_nb {package.__version__}"


def test_select_writes_weights_that_match_the_library(csl_nb, probs_file, tmp_path):
    path, probs = probs_file
    valid = torch.ones(3, 20, 28, dtype=torch.bool)
    valid[:, :, -5:] = False
    torch.save(valid, tmp_path / "valid.pt")
    done = csl_nb("select", path, "--out", tmp_path / "out", "--valid", tmp_path / "valid.pt", "--image", 2)
    assert done.returncode == 0, done.stderr
    weights = torch.load(tmp_path / "out" / "weights.pt")
    torch.testing.assert_close(weights, package.csl_weights(probs, valid))
    assert torch.equal(torch.load(tmp_path / "out" / "reliable.pt"), (weights == 1) & valid)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["images"] == 3 and summary["valid_pixels"] == int(valid.sum())
    assert (tmp_path / "out" / "selection.png").stat().st_size > 10_000


def test_select_numpy_in_numpy_out(csl_nb, tmp_path):
    probs = torch.softmax(torch.randn(1, 4, 10, 10, dtype=torch.float64), 1)
    np.save(tmp_path / "p.npy", probs.numpy())
    done = csl_nb("select", tmp_path / "p.npy", "--out", tmp_path / "o", "--alpha", 2, "--confidence-scaling", "--scale", 0.5, "--dispersion", "exact")
    assert done.returncode == 0, done.stderr
    expected = package.csl_weights(probs, torch.ones(1, 10, 10, dtype=torch.bool), alpha=2, confidence_scaling=True, scale=0.5, dispersion="exact")
    np.testing.assert_allclose(np.load(tmp_path / "o" / "weights.npy"), expected.numpy())


def test_selector_demo_writes_tables_and_figure(csl_nb, tmp_path):
    done = csl_nb("selector-demo", "--out", tmp_path / "demo")
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "demo" / "overlap.md").read_text()
    assert "calibrated predictor" in report and "overconfident predictor" in report and "AUROC" in report
    assert (tmp_path / "demo" / "overview.png").stat().st_size > 10_000


def corrupt(tmp_path):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(b"\x80\x02 this is not a checkpoint")
    return path


def saved(tmp_path, name, value):
    path = tmp_path / name
    torch.save(value, path)
    return path


@pytest.mark.parametrize("make_input, message", [
    (lambda t: t / "missing.pt", "no such file"),
    (corrupt, "cannot read it as a tensor file"),
    (lambda t: saved(t, "logits.pt", torch.randn(2, 5, 8, 8)), "softmax"),
    (lambda t: saved(t, "unnormalised.pt", torch.rand(2, 5, 8, 8)), "sum to 1"),
    (lambda t: saved(t, "nan.pt", torch.full((2, 5, 8, 8), float("nan"))), "NaN"),
    (lambda t: saved(t, "flat.pt", torch.rand(5, 8)), "B×K×H×W"),
    (lambda t: saved(t, "one_class.pt", torch.ones(2, 1, 8, 8)), "K ≥ 2"),
    (lambda t: saved(t, "ints.pt", torch.ones(2, 3, 8, 8, dtype=torch.long)), "floating point"),
    (lambda t: saved(t, "a_list.pt", {"something": 1}), "not a tensor"),
    (lambda t: saved(t, "scalar.pt", torch.tensor(0.5)), "got a 0-d tensor"),
    (lambda t: t, "is a folder"),
    (lambda t: saved(t, "bkh.pt", torch.softmax(torch.randn(2, 5, 8), 1)), "it looks like B×K×H, a batch missing its H or W dimension"),
])
def test_select_rejects_bad_probabilities(csl_nb, tmp_path, make_input, message):
    done = csl_nb("select", make_input(tmp_path), "--out", tmp_path / "out")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "weights.pt").exists()


@pytest.mark.parametrize("valid, message", [
    (torch.ones(3, 20, 27, dtype=torch.bool), "shape"),
    (torch.full((3, 20, 28), 2.0), "0/1"),
])
def test_select_rejects_bad_valid_mask(csl_nb, probs_file, tmp_path, valid, message):
    path, _ = probs_file
    done = csl_nb("select", path, "--out", tmp_path / "out", "--valid", saved(tmp_path, "valid.pt", valid))
    assert done.returncode == 2 and message in done.stderr


@pytest.mark.parametrize("alpha", ["0", "-2", "nan", "inf"])
def test_select_rejects_a_fall_off_that_is_not_positive(csl_nb, probs_file, tmp_path, alpha):
    path, _ = probs_file
    done = csl_nb("select", path, "--out", tmp_path / "out", "--alpha", alpha)
    assert done.returncode == 2 and "alpha must be a finite number > 0" in done.stderr
    assert not (tmp_path / "out" / "weights.pt").exists()


def test_speed_module_has_a_cli(capsys):
    from csl_nb.speed import main
    with pytest.raises(SystemExit) as stop: main(["--help"])
    assert stop.value.code == 0 and "selector" in capsys.readouterr().out


def test_every_printed_reproduce_command_loads_as_a_config(csl_nb, tmp_path):
    "The commands `csl_nb reproduce` prints, for all four tables, parse and load with typed values (no data needed)."
    from csl_nb.cli import build_parser, parse_overrides
    from csl_nb.config import load_config
    from csl_nb.reproduce import TABLES
    for table, spec in TABLES.items():
        done = csl_nb("reproduce", table, "--data-root", tmp_path / "data", "--runs", tmp_path / "runs")
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("does not exist") == 1 and "data_scripts/prepare_" in done.stdout   # said once, with the fix
        for launcher in ("torchrun ", "python "):
            commands = [line for line in done.stdout.splitlines() if line.startswith(launcher)]
            assert len(commands) == 3 * len(spec["splits"])                 # csl, unimatch, supervised
            for (method, split), command in zip([(m, s) for m in ("csl", "unimatch", "supervised") for s in spec["splits"]], commands):
                args = build_parser().parse_args(command.split(" -m csl_nb.cli ")[1].split())
                cfg = load_config(args.config, dict(parse_overrides(args.set), method=args.method, out=str(args.out)))
                assert cfg.split == split and cfg.method == method and cfg.dataset == spec["dataset"] and isinstance(cfg.batch_size, int)


def test_readme_train_commands_load_as_configs():
    "The README's training commands parse and load (data is not touched)."
    from csl_nb.cli import build_parser, parse_overrides
    from csl_nb.config import load_config
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    commands = [line.split("#")[0].strip() for line in readme.splitlines() if " train --config " in line and line.startswith(("csl_nb", "torchrun"))]
    assert len(commands) >= 4, commands
    for command in commands:
        args = build_parser().parse_args(command.split("csl_nb.cli ", 1)[-1].split("csl_nb ", 1)[-1].split())
        overrides = parse_overrides(args.set)
        if args.method: overrides["method"] = args.method
        overrides.setdefault("data_root", "data/x") if args.config != "embedded" else None
        cfg = load_config(args.config, overrides)
        assert cfg.epochs >= 1


@pytest.mark.parametrize("command", [["select", "PROBS"], ["selector-demo"], ["demo"], ["bench"], ["regime"], ["train", "--config", "embedded"]])
def test_an_out_folder_that_is_a_file_is_named_before_any_work(csl_nb, probs_file, tmp_path, command):
    taken = tmp_path / "results.txt"; taken.write_text("mine")
    args = [str(probs_file[0]) if a == "PROBS" else a for a in command]
    for out in (taken, taken / "sub"):
        done = csl_nb(*args, "--out", out)
        assert done.returncode == 2 and f"{taken} is a file; --out names a folder" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert taken.read_text() == "mine"


@pytest.mark.parametrize("command, setting, key", [("demo", "splits=()", "splits"), ("bench", "seeds=abc", "seeds"), ("bench", "seeds=", "seeds")])
def test_a_protocol_list_that_is_not_numbers_names_its_key(csl_nb, tmp_path, command, setting, key):
    done = csl_nb(command, "--out", tmp_path / "out", "--set", setting)
    assert done.returncode == 2 and f"{key} expects one or more whole numbers ≥ 0 separated by commas, e.g. {key}=" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()
