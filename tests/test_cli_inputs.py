"""The `csl_nb` command's answers to careless input (issue 38, items 4, 6, 7, 9, 10): a damaged fingerprint reference, kernels
that are not the reference's, a runs folder of other kernels, a malformed `--set`, a read-only or full output folder, numbers
out of range, a `|` in a name. Each test runs `main` in this process (conftest.py) in seconds: the benchmark's training is
replaced by a stub that writes its report, so what is checked is what the command says and records around it."""
import errno, json, os, pathlib, subprocess
import numpy as np
import pytest
import torch

import csl_nb.cli as cli
import csl_nb.fingerprint as fingerprint
from csl_nb.overlap import synthetic_predictions


@pytest.fixture
def probs_file(tmp_path):
    probs = torch.softmax(4 * torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0)), 1)
    torch.save(probs, tmp_path / "probs.pt")
    return tmp_path / "probs.pt"


def failed_with(done, line:str):
    "The command exited with status 2 and printed exactly `line` as its last line, with no traceback."
    assert done.returncode == 2, (done.returncode, done.stdout[-500:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1] == line, done.stderr


# ---- 6. the fingerprint check cannot block or mislead

@pytest.fixture
def unpinned(monkeypatch):
    "This process's environment without the pinned kernel variables: what `--native-kernels` (or an in-process call) runs with."
    for key in cli.PINNED_KERNELS: monkeypatch.delenv(key, raising=False)


@pytest.fixture
def no_fingerprint(monkeypatch):
    "Computing this CPU's fingerprint fails the test: the cases below must say their piece without it."
    def computed(): raise AssertionError("the fingerprint was computed")
    monkeypatch.setattr(fingerprint, "cpu_fingerprint", computed)


@pytest.fixture
def stub_runs(monkeypatch):
    "demo, bench and regime train nothing: each call is recorded and writes the report a run would."
    calls = []
    def run(out, overrides, report, protocol, jobs=1, **pieces):
        calls.append(out); pathlib.Path(report).mkdir(parents=True, exist_ok=True)
        (pathlib.Path(report) / "results.md").write_text("| variant | mIoU |\n|---|---|\n| csl | 50.0 |\n")
    def regime(out, report, overrides, candidates, **options):
        calls.append(out); return "| candidate | verdict |"
    for name in ("demo", "bench"): monkeypatch.setattr(cli, name, run)
    monkeypatch.setattr(cli, "regime", regime)
    return calls


def provenance_of(folder) -> dict: return json.loads((folder / "provenance.json").read_text())


@pytest.mark.parametrize("content, why", [
    (None, "no such file"),
    ('{"machine": {"cpu": "Intel', "not valid JSON (Unterminated string starting at: line 1 column 21 (char 20))"),
    ("{}", "not a fingerprint file: machine.cpu, machine.capability, machine.env, results, seed_spread.points, seed_spread.split, "
           "seed_spread.variant missing or malformed"),
])
def test_a_damaged_reference_is_named_and_nothing_is_computed(tmp_path, no_fingerprint, content, why):
    reference = tmp_path / "fingerprint.json"
    if content is not None: reference.write_text(content)
    check = fingerprint.fingerprint_check(reference)
    assert (check["matches"], check["compared"]) == (None, 0)
    assert check["message"] == f"no reference fingerprint ({reference}: {why}): cannot say whether tables will match", check["message"]


def test_the_demo_trains_on_without_a_reference(csl_nb, tmp_path, monkeypatch, unpinned, no_fingerprint, stub_runs):
    missing = tmp_path / "gone" / "fingerprint.json"
    monkeypatch.setattr(fingerprint, "REFERENCE_FINGERPRINT", missing)
    done = csl_nb("demo", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    said = f"no reference fingerprint ({missing}: no such file): cannot say whether tables will match"
    assert said in done.stdout.splitlines() and stub_runs == [tmp_path / "out"]   # said, then trained
    assert provenance_of(tmp_path / "out")["fingerprint"]["message"] == said


def test_native_kernels_are_not_compared_with_the_pinned_reference(csl_nb, tmp_path, unpinned, no_fingerprint, stub_runs):
    done = csl_nb("demo", "--native-kernels", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    capability = torch.backends.cpu.get_cpu_capability()
    assert f"CPU kernels: native, not pinned (no kernel variable set; ATen picks {capability}): as --native-kernels asks" in done.stdout.splitlines()
    assert (f"no digest compared: the reference fingerprint ({fingerprint.REFERENCE_FINGERPRINT}) was made with ATEN_CPU_CAPABILITY=avx2, "
            f"ONEDNN_MAX_CPU_ISA=AVX2, MKL_ENABLE_INSTRUCTIONS=AVX2, MKL_CBWR=COMPATIBLE, this process runs with no kernel variable set") in done.stdout
    assert "digests differ" not in done.stdout and "not identical tables" in done.stdout
    written = provenance_of(tmp_path / "out")
    assert (written["kernels"], written["kernels_pinned"], written["fingerprint"]["compared"]) == ("native", False, 0)
    assert (tmp_path / "out" / "kernels.txt").read_text() == "native\n"


def test_a_pinned_environment_says_pinned_whatever_the_flag(csl_nb, tmp_path, monkeypatch, stub_runs):
    for key, value in cli.PINNED_KERNELS.items(): monkeypatch.setenv(key, value)
    shipped = json.loads(fingerprint.REFERENCE_FINGERPRINT.read_text())
    monkeypatch.setattr(fingerprint, "cpu_fingerprint", lambda: {"machine": shipped["machine"], "results": shipped["results"]})   # the same bits
    done = csl_nb("demo", "--native-kernels", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "--native-kernels has no effect: the environment sets these variables (unset them for the CPU's own kernels)" in done.stdout
    assert "this CPU computes the committed bits (all 714 digests" in done.stdout
    written = provenance_of(tmp_path / "out")
    assert (written["kernels"], written["kernels_pinned"], written["fingerprint"]["matches"]) == ("pinned", True, True)


@pytest.mark.parametrize("command", ["demo", "bench", "regime"])
def test_a_runs_folder_of_the_other_kernels_is_refused(csl_nb, tmp_path, unpinned, no_fingerprint, stub_runs, command):
    (tmp_path / "out").mkdir(); (tmp_path / "out" / "kernels.txt").write_text("pinned\n")
    done = csl_nb(command, "--native-kernels", "--out", tmp_path / "out")
    failed_with(done, f"csl_nb {command}: error: --out {tmp_path / 'out'}: its runs were trained with pinned CPU kernels and this command's "
                      f"use native ones; it would reuse and resume them in one table: choose another --out, or leave out --native-kernels")
    assert stub_runs == [] and not (tmp_path / "out" / "provenance.json").exists()


def test_a_report_from_logs_records_the_kernels_its_runs_were_trained_with(csl_nb, tmp_path, unpinned, no_fingerprint, stub_runs):
    (tmp_path / "out").mkdir(); (tmp_path / "out" / "kernels.txt").write_text("pinned\n")
    done = csl_nb("bench", "--from-logs", "--native-kernels", "--out", tmp_path / "out")   # trains nothing: nothing to refuse
    assert done.returncode == 0, done.stderr
    written = provenance_of(tmp_path / "out")
    assert (written["kernels"], written["fingerprint"]) == ("pinned", None)


def test_a_report_from_logs_keeps_the_commands_that_trained_into_it(csl_nb, tmp_path, no_fingerprint, stub_runs):
    assert csl_nb("bench", "--out", tmp_path / "out", "--minutes", "5").returncode == 0
    first = provenance_of(tmp_path / "out")
    assert [record["command"] for record in first["trained_by"]] == [first["command"]]
    assert csl_nb("bench", "--out", tmp_path / "out", "--minutes", "6").returncode == 0   # the bench's next piece
    second = provenance_of(tmp_path / "out")
    assert [record["command"] for record in second["trained_by"]] == [first["command"], second["command"]]
    assert csl_nb("bench", "--out", tmp_path / "out", "--minutes", "6").returncode == 0   # the same command again: one record
    assert provenance_of(tmp_path / "out")["trained_by"] == second["trained_by"]
    for _ in range(2):   # a rewrite from the logs keeps them, and a second rewrite too
        assert csl_nb("bench", "--from-logs", "--out", tmp_path / "out").returncode == 0
        written = provenance_of(tmp_path / "out")
        assert "--from-logs" in written["command"] and written["trained_by"] == second["trained_by"]
        assert written["trained_by"][0]["fingerprint"] == first["fingerprint"] and "--minutes" in written["trained_by"][0]["command"]


def test_a_report_written_before_trained_by_was_a_list_keeps_its_record(tmp_path):
    from csl_nb.cli import earlier_training
    record = dict(command=["csl_nb", "bench", "--minutes", "5"], commit="abc", uncommitted_changes=False, kernels="pinned", threads=1, cpu="x", fingerprint=None)
    (tmp_path / "provenance.json").write_text(json.dumps(dict(command=["csl_nb", "bench", "--from-logs"], trained_by=record)))
    assert earlier_training(tmp_path) == [record]
    assert earlier_training(tmp_path / "none") == []


# ---- 9. a malformed --set names itself

@pytest.mark.parametrize("command", [["train", "--config", "embedded"], ["demo"], ["regime"]])
@pytest.mark.parametrize("pair, why", [("augment.scale_range=[0.5,2", "not valid YAML (expected ',' or ']', but got '<stream end>' at column 7)"),
                                       ("augment.crop={64", "not valid YAML (expected ',' or '}', but got '<stream end>' at column 4)"),
                                       ("epochs", "expected KEY=VALUE, e.g. epochs=2 or augment.crop=64"),
                                       ("=2", "expected KEY=VALUE, e.g. epochs=2 or augment.crop=64")])
def test_a_malformed_set_names_the_pair(csl_nb, tmp_path, stub_runs, command, pair, why):
    done = csl_nb(*command, "--out", tmp_path / "out", "--set", pair)
    failed_with(done, f"csl_nb {command[0]}: error: --set {pair}: {why}")
    assert stub_runs == [] and not (tmp_path / "out").exists()


# ---- 10. a read-only or full output folder: one line naming the folder

@pytest.fixture
def tmpfs(tmp_path):
    "mount(name, options): a tmpfs mounted at tmp_path/name (skips the test where mounting is not permitted); unmounted after."
    mounted = []
    def mount(name:str, options:str) -> pathlib.Path:
        folder = tmp_path / name; folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
        if done.returncode: pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(folder)
        return folder
    yield mount
    for folder in mounted: subprocess.run(["umount", str(folder)], check=True)


def no_partial_files(folder:pathlib.Path) -> bool:
    "Whether a folder holds no partial or empty file: every write in it was whole or left nothing."
    return all(".partial" not in p.name and p.stat().st_size > 0 for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("out", ["x", "."])   # a folder to create in it, and the read-only folder itself
def test_a_read_only_disk_gets_one_line(csl_nb, tmp_path, tmpfs, probs_file, out):
    read_only = tmpfs("ro", "ro,size=1m") / out
    done = csl_nb("select", probs_file, "--out", read_only)
    failed_with(done, f"csl_nb select: error: cannot write to {read_only}: Read-only file system")


@pytest.mark.parametrize("suffix", [".pt", ".npy"])
def test_a_full_disk_gets_one_line_and_leaves_no_partial_file(csl_nb, tmp_path, tmpfs, suffix):
    probs = torch.softmax(torch.randn(2, 4, 128, 128, generator=torch.Generator().manual_seed(0)), 1)   # weights of 128 KiB
    path = tmp_path / f"probs{suffix}"
    torch.save(probs, path) if suffix == ".pt" else np.save(path, probs.numpy())
    out = tmpfs("full", "size=64k") / "x"
    done = csl_nb("select", path, "--out", out)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().startswith(f"csl_nb select: error: cannot write to {out}: a file could not be written whole, is the disk full? ("), done.stderr
    assert no_partial_files(out)


def test_a_read_only_folder_without_mounting(csl_nb, tmp_path, probs_file, monkeypatch):
    "The read-only case where mounting is not permitted: making the folder fails as a read-only file system fails it."
    def read_only(self, *args, **kwargs): raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    done = csl_nb("select", probs_file, "--out", tmp_path / "out")
    failed_with(done, f"csl_nb select: error: cannot write to {tmp_path / 'out'}: Read-only file system")


def test_torch_save_on_a_full_disk_without_mounting(csl_nb, tmp_path, probs_file, monkeypatch):
    "torch.save's own error for a full disk, raised after part of the file is written: one line, and no partial file left."
    def full(obj, path, *args, **kwargs):
        pathlib.Path(path).write_bytes(b"PK\x03\x04 part of a zip")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    monkeypatch.setattr(torch, "save", full)
    done = csl_nb("select", probs_file, "--out", tmp_path / "out")
    failed_with(done, f"csl_nb select: error: cannot write to {tmp_path / 'out'}: a file could not be written whole, is the disk full? "
                      f"([enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534)")
    assert list((tmp_path / "out").iterdir()) == []


def test_select_leaves_no_empty_summary_when_the_disk_fills(csl_nb, tmp_path, probs_file, monkeypatch):
    write_text = pathlib.Path.write_text
    def fills_on_summary(self, text, *args, **kwargs):
        if "summary" not in self.name: return write_text(self, text, *args, **kwargs)
        write_text(self, ""); raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))   # the file opened, nothing written
    monkeypatch.setattr(pathlib.Path, "write_text", fills_on_summary)
    done = csl_nb("select", probs_file, "--out", tmp_path / "out")
    failed_with(done, f"csl_nb select: error: cannot write to {tmp_path / 'out'}: No space left on device")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["reliable.pt", "weights.pt"]   # no summary.json, empty or partial


# ---- 4 and 7. numbers out of range, a `|` in a name, NaN in audit.json

@pytest.fixture
def audit_inputs(tmp_path):
    sp = synthetic_predictions(batch=2, classes=5, size=24, seed=1)
    torch.save(sp.overconfident, tmp_path / "probs.pt"); np.save(tmp_path / "labels.npy", sp.target.numpy())
    return tmp_path / "probs.pt", tmp_path / "labels.npy"


@pytest.mark.parametrize("option, value, words", [
    *[("--gpus", v, "a whole number ≥ 1") for v in ("-2", "0", "1.5")],
    *[("--minutes", v, "a finite number > 0") for v in ("0", "-1", "nan", "inf")],
    *[("--tau", v, "a number in (0, 1]") for v in ("0", "1.5", "nan", "-0.1")],
])
def test_a_number_out_of_range_is_refused_by_the_parser(csl_nb, tmp_path, audit_inputs, option, value, words):
    command = {"--gpus": ["reproduce", "cityscapes", "--data-root", tmp_path / "data", "--run"], "--minutes": ["bench", "--out", tmp_path / "out"],
               "--tau": ["audit", *audit_inputs, "--out", tmp_path / "out"]}[option]
    done = csl_nb(*command, option, value)
    failed_with(done, f"csl_nb {command[0]}: error: argument {option}: must be {words}, got {value!r}")
    assert not (tmp_path / "out").exists()


def test_select_refuses_a_threshold_out_of_range_too(csl_nb, tmp_path, probs_file):
    failed_with(csl_nb("select", probs_file, "--out", tmp_path / "out", "--tau", "2"), "csl_nb select: error: argument --tau: must be a number in (0, 1], got '2'")


def test_a_bar_in_the_name_does_not_break_the_table(csl_nb, tmp_path, audit_inputs):
    done = csl_nb("audit", *audit_inputs, "--out", tmp_path / "out", "--name", "unet|v2")
    assert done.returncode == 0, done.stderr
    rows = [line for line in (tmp_path / "out" / "audit.md").read_text().splitlines() if line.startswith("|")]
    cells = lambda row: len(row.replace("\\|", "").split("|"))
    assert len(rows) == 6 and {cells(row) for row in rows} == {cells(rows[0])}   # as many cells in every row as in the header
    assert all(row.startswith("| unet\\|v2 |") for row in rows[2:])


def test_audit_json_holds_null_where_no_pixel_was_scored(csl_nb, tmp_path, audit_inputs):
    probs, _ = audit_inputs
    np.save(tmp_path / "background.npy", np.zeros((2, 24, 24), dtype=np.int64))   # no foreground pixel: its scores are undefined
    done = csl_nb("audit", probs, tmp_path / "background.npy", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "out" / "audit.json").read_text()
    def not_json(constant): raise AssertionError(f"audit.json holds {constant}")
    scores = json.loads(text, parse_constant=not_json)
    assert all(s["foreground_precision"] is None and s["precision"] is not None for s in scores.values())
