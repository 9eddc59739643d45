"""The offline HTML site and the executed notebooks: what a reader sees without running anything."""
import html, json, os, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".ci"))
import docs_site  # noqa: E402


@pytest.mark.slow   # builds the site
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
        if stem == "index": continue   # the front page summarises the book: its hidden cells read committed results with any module
        text = "".join("".join(c["source"]) for c in json.loads((ROOT / "nbs" / f"{stem}.ipynb").read_text())["cells"] if c["cell_type"] == "code")
        imported = {line.split("csl_nb.")[1].split()[0] for line in text.splitlines() if line.strip().startswith("from csl_nb.")}
        earlier = {modules[s] for s in order[:i]}
        assert imported <= earlier, f"{stem} imports {sorted(imported - earlier)} from later notebooks"


def test_notebooks_and_package_are_self_contained():
    "The tutorial states its formulas itself: no notebook or module points the reader to a specification file the repository lacks."
    for path in sorted((ROOT / "nbs").glob("*.ipynb")) + sorted((ROOT / "csl_nb").glob("*.py")):
        assert "METHOD.md" not in path.read_text(), f"{path.name} cites METHOD.md, which is not in the repository"


CHECK = """<script>
window.addEventListener('load', () => {
  const box = e => e.getBoundingClientRect();
  const line = parseFloat(getComputedStyle(document.querySelector('main p')).fontSize);
  const report = {images: document.images.length, loaded: [...document.images].filter(i => i.complete && i.naturalWidth > 0).length,
    blocks: document.querySelectorAll('math[display=block]').length,
    fractions: [...document.querySelectorAll('mfrac')].map(f => box(f).height), line: line,
    chapters: document.querySelectorAll('nav.sidebar a').length, pager: document.querySelectorAll('footer.pager a').length,
    prompts: document.querySelectorAll('.jp-InputPrompt, .prompt, .input_prompt').length};
  document.body.setAttribute('data-check', JSON.stringify(report));
});
</script>"""


def chromium():
    import shutil
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("CI"): pytest.fail("Debian's chromium is not installed: .ci/run installs it (apt-get install chromium)")
        pytest.skip("needs Debian's chromium (apt-get install chromium); CI installs it")
    return found


@pytest.mark.slow   # a browser
def test_a_chapter_renders_its_formula_and_figures_offline_in_chromium(tmp_path):
    "Headless Chromium, no network: the residual-dispersion chapter's formula is laid out as a fraction and every figure decodes."
    browser = chromium()
    notebooks = [ROOT / "nbs" / "01_convex_selector.ipynb", ROOT / "nbs" / "02_residual_dispersion.ipynb"]
    docs_site.build(notebooks, tmp_path)
    page = (tmp_path / "02_residual_dispersion.html").read_text()
    assert "<script" not in page and "http://" not in page.split("<body>")[0] and "https://" not in page.split("<body>")[0]
    (tmp_path / "checked.html").write_text(page.replace("</body>", CHECK + "</body>"))
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
                           "--virtual-time-budget=5000", "--dump-dom", (tmp_path / "checked.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r"data-check=\"([^\"]*)\"", done.stdout)
    assert found, done.stderr[-2000:]
    report = json.loads(html.unescape(found.group(1)))
    assert report["images"] >= 2 and report["loaded"] == report["images"], report          # every embedded figure decodes
    assert report["blocks"] >= 1 and max(report["fractions"]) > 1.6 * report["line"], report  # a fraction stacked over two lines of text: MathML laid out
    assert report["chapters"] == 1 + 2 and report["pager"] == 1 and report["prompts"] == 0, report
