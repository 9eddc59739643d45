"""The offline HTML site and the executed notebooks: what a reader sees without running anything."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".ci"))
import docs_site  # noqa: E402


def test_site_pages_embed_figures_and_link_chapters(tmp_path):
    notebooks = [ROOT / "nbs" / "00_confidence_overlap.ipynb", ROOT / "nbs" / "02_residual_dispersion.ipynb"]
    entries = docs_site.build(notebooks, tmp_path)
    assert [name for name, _, _ in entries] == ["00_confidence_overlap", "02_residual_dispersion"]
    for name, title, _ in entries:
        page = (tmp_path / f"{name}.html").read_text()
        assert page.count("data:image/png;base64,") >= 1, name          # the saved figures are in the page itself
        assert ".ipynb\"" not in page and f"<title>{title}" in page
    assert 'href="01_convex_selector.html"' in (tmp_path / "00_confidence_overlap.html").read_text()
    contents = (tmp_path / "contents.html").read_text()
    assert contents.index("00_confidence_overlap.html") < contents.index("02_residual_dispersion.html")


def test_every_notebook_is_saved_with_its_outputs():
    "Opening a notebook shows what it computes: every one that has code keeps outputs, and each figure-drawing one a figure."
    for path in docs_site.reading_order():
        cells = json.loads(path.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert any(c.get("outputs") for c in code), f"{path.name} has no saved output: run make docs"
        source = "".join("".join(c["source"]) for c in code)
        if "plt.subplots" in source or "show_scenes(" in source:
            assert any(o.get("data", {}).get("image/png") for c in code for o in c.get("outputs", [])), f"{path.name}: no saved figure"


def test_notebooks_import_only_from_earlier_ones():
    "Reading order is import order: a notebook's `from csl_nb.X import` names only modules of earlier notebooks."
    modules = {}
    for path in docs_site.reading_order():
        cells = json.loads(path.read_text())["cells"]
        exp = next(("".join(c["source"]).split("default_exp")[1].split()[0] for c in cells if "#| default_exp" in "".join(c["source"])), None)
        modules[path.stem] = exp
    order = [p.stem for p in docs_site.reading_order()]
    for i, stem in enumerate(order):
        text = "".join("".join(c["source"]) for c in json.loads((ROOT / "nbs" / f"{stem}.ipynb").read_text())["cells"] if c["cell_type"] == "code")
        imported = {line.split("csl_nb.")[1].split()[0] for line in text.splitlines() if line.strip().startswith("from csl_nb.")}
        earlier = {modules[s] for s in order[:i]}
        assert imported <= earlier, f"{stem} imports {sorted(imported - earlier)} from later notebooks"


def test_notebooks_and_package_are_self_contained():
    "The tutorial states its formulas itself: no notebook or module points the reader to a specification file the repository lacks."
    for path in sorted((ROOT / "nbs").glob("*.ipynb")) + sorted((ROOT / "csl_nb").glob("*.py")):
        assert "METHOD.md" not in path.read_text(), f"{path.name} cites METHOD.md, which is not in the repository"
