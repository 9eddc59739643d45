"""Execute notebooks top to bottom and save them with their outputs (then run `nbdev_clean`, which keeps outputs).

    python .ci/execute.py [NOTEBOOK ...]   (default: every notebook in nbs/, in reading order)

Progress bars are switched off (TQDM_DISABLE) so that the saved outputs hold no timings that change on every run."""
import os, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_site import reading_order  # noqa: E402


def execute(path: Path, timeout: int = 3600):
    "Run every cell of the notebook at `path` in its own folder and write it back with the outputs."
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(notebook, path)


if __name__ == "__main__":
    os.environ["TQDM_DISABLE"] = "1"
    for path in [Path(p) for p in sys.argv[1:]] or reading_order():
        start = time.perf_counter()
        execute(path)
        print(f"executed {path.name} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
