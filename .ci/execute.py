"""Execute notebooks top to bottom and save them with their outputs (then run `nbdev_clean`, which keeps outputs).

    python .ci/execute.py [NOTEBOOK ...]   (default: every notebook in nbs/, in reading order)

Progress bars are switched off (TQDM_DISABLE) and what cells wrote to stderr (progress bars a function was asked to show,
library warnings with this machine's paths) is not kept, so that the saved outputs do not change on every run."""
import os, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_site import reading_order  # noqa: E402


def skipped(cell) -> bool:
    "Cells nbdev_test does not run either: flagged `#| eval: false` (e.g. the `if __name__ == '__main__'` entry points)."
    return cell.cell_type == "code" and any(line.strip().replace(" ", "") == "#|eval:false" for line in cell.source.splitlines())


def steady_outputs(notebook):
    "Drop stderr streams (progress bars, warnings: timings and local paths) and join consecutive stdout chunks (how a print is split varies run to run)."
    for cell in notebook.cells:
        if cell.cell_type != "code": continue
        outputs = []
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr": continue
            if output.output_type == "stream" and outputs and outputs[-1].output_type == "stream": outputs[-1].text += output.text
            else: outputs.append(output)
        cell.outputs = outputs
    return notebook


def execute(path: Path, timeout: int = 3600):
    "Run every cell of the notebook at `path` (but the skipped ones) in its own folder and write it back with the outputs."
    notebook = nbformat.read(path, as_version=4)
    held = {i: cell.source for i, cell in enumerate(notebook.cells) if skipped(cell)}
    for i in held: notebook.cells[i].source = ""
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    for i, source in held.items(): notebook.cells[i].source, notebook.cells[i].outputs = source, []
    nbformat.write(steady_outputs(notebook), path)


if __name__ == "__main__":
    os.environ["TQDM_DISABLE"] = "1"
    for path in [Path(p) for p in sys.argv[1:]] or reading_order():
        start = time.perf_counter()
        execute(path)
        print(f"executed {path.name} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
