"""Fixtures shared by the test files: one data cache per test run, and the `csl_nb` command called in this process.

Starting a Python interpreter and importing torch takes ~4–8 s on a small CPU, longer than most of what the tests check.
So a test calls the command's `main` in-process (same parser, same code, same exit status and messages) unless the
process itself is what it checks: the installed entry point, a killed run, two DDP processes, the demo's restart with
pinned kernels, the installed wheel."""
from typing import NamedTuple
import pytest
import torch


class Done(NamedTuple):
    "What a command run left: its exit status and what it printed (the fields of `subprocess.CompletedProcess`)."
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    "A data cache for the whole run: each embedded set is generated once, by the first test that asks for it."
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def cache(shared_cache, monkeypatch):
    "CSL_NB_CACHE pointed at the run's shared cache, for tests that read the generated sets but never change them."
    monkeypatch.setenv("CSL_NB_CACHE", str(shared_cache))
    return shared_cache


def run_captured(capsys, program) -> Done:
    "Call `program()` as a command line runs it: its exit status (SystemExit's code, else 0) and what it printed."
    capsys.readouterr()   # what the test printed before is not the program's
    try: program(); code = 0
    except SystemExit as stop: code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    out, err = capsys.readouterr()
    return Done(code, out, err)


@pytest.fixture
def csl_nb(capsys):
    "`csl_nb(*args)`: the `csl_nb` command's `main(args)` in this process → Done(returncode, stdout, stderr)."
    from csl_nb.cli import main
    def run(*args) -> Done:
        threads = torch.get_num_threads()
        try: return run_captured(capsys, lambda: main([str(a) for a in args]))
        finally: torch.set_num_threads(threads)   # main() sets the threads of the process it runs in
    return run
