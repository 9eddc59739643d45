"""Build a static HTML site of the executed notebooks in _docs/ that works offline: one page per notebook with every
figure embedded, formulas rendered to MathML at build time (no MathJax, no script or style from the network), a
sidebar of the chapters in reading order and previous/next links on every page, no In/Out prompts, `#| hide` cells
dropped and `#| echo: false` cells showing their output only, and a contents page in the same style.

    python .ci/docs_site.py [--out _docs] [NOTEBOOK ...]   (default: every notebook in nbs/)

(nbdev_docs needs quarto, which cannot be installed offline; nbconvert's HTML exporter renders the cells here.)"""
import argparse, html, re, sys
from pathlib import Path
import nbformat
from latex2mathml.converter import convert as latex_to_mathml
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor

root = Path(__file__).resolve().parent.parent
NBS = root / "nbs"

STYLE = """
body { margin: 0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; display: flex; }
nav.sidebar { position: sticky; top: 0; height: 100vh; overflow-y: auto; width: 250px; flex: none; padding: 1.2rem 1rem;
              box-sizing: border-box; background: #f6f8fa; border-right: 1px solid #d0d7de; font-size: 14px; }
nav.sidebar a { display: block; padding: 0.25rem 0.4rem; color: #1f2328; text-decoration: none; border-radius: 4px; }
nav.sidebar a:hover { background: #eaeef2; }
nav.sidebar a.current { background: #ddf4ff; font-weight: 600; }
nav.sidebar .site { font-size: 18px; font-weight: 700; margin-bottom: 0.8rem; }
main { flex: 1; min-width: 0; max-width: 1000px; padding: 1.5rem 2.5rem 4rem; }
h1, h2, h3 { line-height: 1.25; } h1 { font-size: 2rem; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.3rem; }
blockquote { margin: 0 0 1rem; padding: 0 1rem; color: #59636e; border-left: 4px solid #d0d7de; }
code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
p code, li code, td code { background: #eff1f3; padding: 0.1em 0.3em; border-radius: 4px; }
.jp-InputArea pre, .input_area pre, div.highlight pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px;
              padding: 0.7rem 0.9rem; overflow-x: auto; margin: 0.8rem 0 0.3rem; }
.jp-OutputArea pre, .output_area pre { background: #fff; border-left: 3px solid #d0d7de; padding: 0.3rem 0.9rem; overflow-x: auto;
              margin: 0.2rem 0 0.8rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 14px; } th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; }
th { background: #f6f8fa; } img { max-width: 100%; height: auto; }
math[display="block"] { margin: 0.8rem 0; font-size: 1.1em; }
a.anchor-link { visibility: hidden; margin-left: 0.3rem; text-decoration: none; color: #8c959f; }
h1:hover a.anchor-link, h2:hover a.anchor-link, h3:hover a.anchor-link { visibility: visible; }
footer.pager { display: flex; justify-content: space-between; margin-top: 3rem; padding-top: 1rem; border-top: 1px solid #d0d7de; }
footer.pager a { text-decoration: none; } ol.contents li { margin: 0.4rem 0; }
.highlight .k, .highlight .kn, .highlight .kc { color: #cf222e; } .highlight .s, .highlight .s1, .highlight .s2 { color: #0a3069; }
.highlight .c1, .highlight .c { color: #59636e; font-style: italic; } .highlight .nf, .highlight .nc { color: #8250df; }
.highlight .mi, .highlight .mf { color: #0550ae; }
"""


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


MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n`]+?)\$", re.S)
CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)


def math_to_placeholders(markdown: str, formulas: list) -> str:
    "`$$…$$` and `$…$` outside code spans replaced by placeholders; their MathML (rendered by the browser, offline) appended to `formulas`."
    def formula(m):
        block = m.group(1) is not None
        formulas.append(latex_to_mathml((m.group(1) if block else m.group(2)).strip(), display="block" if block else "inline"))
        return f"\n\nMATHML{len(formulas) - 1}X\n\n" if block else f"MATHML{len(formulas) - 1}X"
    return "".join(part if CODE.fullmatch(part) else MATH.sub(formula, part) for part in CODE.split(markdown))


def placeholders_to_mathml(body: str, formulas: list) -> str:
    "Put the formulas in after nbconvert's markdown rendering (which would take MathML apart as unknown HTML)."
    body = re.sub(r"<p>\s*MATHML(\d+)X\s*</p>", lambda m: formulas[int(m.group(1))], body)
    return re.sub(r"MATHML(\d+)X", lambda m: formulas[int(m.group(1))], body)


def prepared(notebook, formulas: list):
    "Cells as a reader sees them: hidden cells dropped, directives removed, echo-false inputs tagged, empty code cells gone."
    cells = []
    for cell in notebook.cells:
        flags = directives(cell)
        if "hide" in flags: continue
        if cell.cell_type == "code" and "echo: false" in flags: cell.metadata.setdefault("tags", []).append("remove_input")
        cell.source = "\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith("#|")).strip("\n")
        if cell.cell_type == "markdown": cell.source = math_to_placeholders(cell.source, formulas)
        if cell.cell_type == "code" and not cell.source and not cell.get("outputs"): continue
        cells.append(cell)
    notebook.cells = cells
    return notebook


def page_body(path: Path) -> tuple:
    "(title, summary, HTML of the cells) of one notebook, images embedded, links to other notebooks pointing at their pages."
    formulas = []
    notebook = prepared(nbformat.read(path, as_version=4), formulas)
    title, summary = title_and_summary(notebook)
    exporter = HTMLExporter(template_name="basic", embed_images=True, exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"remove_input"}, enabled=True), enabled=True)
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"path": str(path.parent), "name": title or path.stem}})
    body = placeholders_to_mathml(re.sub(r"<script\b.*?</script>", "", body, flags=re.S), formulas)      # the basic template's widget loader: nothing runs offline
    body = re.sub(r'href="([\w.-]+)\.ipynb(#[^"]*)?"', lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
    return title, summary, body


def sidebar(entries: list, current: str) -> str:
    links = "\n".join(f'<a href="{html.escape(name)}.html"{" class=current" if name == current else ""}>{html.escape(title or name)}</a>'
                      for name, title, _ in entries)
    return f'<nav class="sidebar"><div class="site"><a href="contents.html">csl_nb</a></div>{links}</nav>'


def pager(entries: list, i: int) -> str:
    previous = f'<a href="{entries[i - 1][0]}.html">← {html.escape(entries[i - 1][1] or entries[i - 1][0])}</a>' if i > 0 else "<span></span>"
    following = f'<a href="{entries[i + 1][0]}.html">{html.escape(entries[i + 1][1] or entries[i + 1][0])} →</a>' if i + 1 < len(entries) else "<span></span>"
    return f'<footer class="pager">{previous}{following}</footer>'


def page(title: str, nav: str, content: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>{nav}<main>{content}</main></body></html>\n")


def contents_html(entries: list) -> str:
    "The site's contents page: every page in reading order with its summary."
    items = "\n".join(f'<li><a href="{html.escape(name)}.html">{html.escape(title or name)}</a> — {html.escape(summary)}</li>'
                      for name, title, summary in entries)
    content = f"<h1>csl_nb</h1><p>The notebooks in reading order, executed, with their outputs.</p><ol class='contents'>{items}</ol>"
    return page("csl_nb: contents", sidebar(entries, "contents"), content)


def build(notebooks: list, out: Path) -> list:
    "Write one page per notebook and contents.html (the README's page is 'index', so the contents page has its own name)."
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    bodies = {Path(p).stem: page_body(Path(p)) for p in notebooks}
    entries = [(name, title, summary) for name, (title, summary, _) in bodies.items()]
    for i, (name, (title, _, body)) in enumerate(bodies.items()):
        (out / f"{name}.html").write_text(page(title or name, sidebar(entries, name), body + pager(entries, i)), encoding="utf-8")
    (out / "contents.html").write_text(contents_html(entries), encoding="utf-8")
    if not (out / "index.html").exists(): (out / "index.html").write_text(contents_html(entries), encoding="utf-8")
    return entries


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to build (default: every one, in reading order)")
    parser.add_argument("--out", type=Path, default=root / "_docs")
    args = parser.parse_args()
    entries = build(args.notebooks or reading_order(), args.out)
    print(f"wrote {len(entries)} pages and contents.html to {args.out}", file=sys.stderr)
