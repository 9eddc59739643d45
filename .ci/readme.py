"""Write README.md from nbs/index.ipynb, offline: drop `#| hide` cells, show only the output of `#| echo: false` cells,
drop `#|` directives, then nbconvert to markdown, with links made relative to the repository root.

(nbdev_readme and nbdev_proc_nbs need quarto, which cannot be installed offline.)"""
import re, sys
from pathlib import Path
import nbformat
from nbconvert import MarkdownExporter
from nbconvert.preprocessors import TagRemovePreprocessor

root = Path(__file__).resolve().parent.parent


def directives(cell) -> set:
    "The cell's `#|` directives, normalised ('hide', 'echo: false', …)."
    return {line.lstrip()[2:].strip() for line in cell.source.splitlines() if line.lstrip().startswith("#|")}


def prepare(cell):
    "The cell without its directive lines; `#| echo: false` code cells tagged to show their output only."
    if cell.cell_type == "code" and "echo: false" in directives(cell): cell.metadata.setdefault("tags", []).append("remove_input")
    cell.source = "\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith("#|")).strip("\n")
    return cell


def from_repository_root(markdown: str) -> str:
    "Relative links and images of the notebook folder, made relative to the repository root."
    return re.sub(r"(!?\[[^\]]*\])\((?!https?:|#|/|nbs/)([^)\s]+)\)", r"\1(nbs/\2)", markdown)


notebook = nbformat.read(root / "nbs" / "index.ipynb", as_version=4)
notebook.metadata["language_info"] = {"name": "python"}  # fenced code blocks tagged python
notebook.cells = [prepare(c) for c in notebook.cells if "hide" not in directives(c)]
exporter = MarkdownExporter()
exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"remove_input"}, enabled=True), enabled=True)
body, _ = exporter.from_notebook_node(notebook)
header = "<!-- WARNING: generated from nbs/index.ipynb by `make readme`; do not edit. -->\n\n"
body = re.sub(r"\n{3,}", "\n\n", from_repository_root(body.strip()))   # nbconvert leaves runs of blank lines between cells
(root / "README.md").write_text(header + body + "\n", encoding="utf-8")
print("wrote README.md", file=sys.stderr)
