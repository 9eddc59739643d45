"""Build a static HTML site of the executed notebooks in _docs/, offline: one page per notebook with every figure
embedded, links between chapters pointing at the pages, and an index page in reading order.

    python .ci/docs_site.py [--out _docs] [NOTEBOOK ...]   (default: every notebook in nbs/)

(nbdev_docs needs quarto, which cannot be installed offline; nbconvert's HTML exporter does the same job here.)"""
import argparse, html, re, sys
from pathlib import Path
import nbformat
from nbconvert import HTMLExporter

root = Path(__file__).resolve().parent.parent
NBS = root / "nbs"


def directives(cell) -> set:
    return {line.lstrip()[2:].strip() for line in cell.source.splitlines() if line.lstrip().startswith("#|")}


def reading_order(nbs: Path = NBS) -> list:
    "The notebooks a reader opens, index first, then by their number."
    pages = sorted(p for p in nbs.glob("*.ipynb") if not p.name.startswith(("_", ".")) and p.stem != "index")
    return ([nbs / "index.ipynb"] if (nbs / "index.ipynb").is_file() else []) + pages


def title_and_summary(notebook) -> tuple:
    "The notebook's '# title' and '> summary' from its first markdown cell."
    first = next((c.source for c in notebook.cells if c.cell_type == "markdown"), "")
    title = next((l[2:].strip() for l in first.splitlines() if l.startswith("# ")), "")
    summary = next((l[1:].strip() for l in first.splitlines() if l.startswith(">")), "")
    return title, summary


def page_html(path: Path) -> tuple:
    "(title, summary, HTML) of one notebook: `#| hide` cells dropped, directives removed, images embedded, links to pages."
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [c for c in notebook.cells if "hide" not in directives(c)]
    for cell in notebook.cells:
        cell.source = "\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith("#|")).strip("\n")
    title, summary = title_and_summary(notebook)
    exporter = HTMLExporter(embed_images=True)
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"path": str(path.parent), "name": title or path.stem}})
    body = re.sub(r'href="([\w.-]+)\.ipynb(#[^"]*)?"', lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
    return title, summary, body


def index_html(entries: list) -> str:
    "The site's front page: every page in reading order with its summary."
    items = "\n".join(f'<li><a href="{html.escape(name)}.html">{html.escape(title or name)}</a> — {html.escape(summary)}</li>'
                      for name, title, summary in entries)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>csl_nb</title></head><body>"
            f"<h1>csl_nb</h1><p>The notebooks in reading order, executed, with their outputs.</p><ol>{items}</ol></body></html>\n")


def build(notebooks: list, out: Path) -> list:
    "Write one page per notebook and index.html's list (the README's page is 'index', so the front page is contents.html)."
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in notebooks:
        title, summary, body = page_html(Path(path))
        (out / f"{Path(path).stem}.html").write_text(body, encoding="utf-8")
        entries.append((Path(path).stem, title, summary))
    (out / "contents.html").write_text(index_html(entries), encoding="utf-8")
    if not (out / "index.html").exists(): (out / "index.html").write_text(index_html(entries), encoding="utf-8")
    return entries


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to build (default: every one, in reading order)")
    parser.add_argument("--out", type=Path, default=root / "_docs")
    args = parser.parse_args()
    entries = build(args.notebooks or reading_order(), args.out)
    print(f"wrote {len(entries)} pages and contents.html to {args.out}", file=sys.stderr)
