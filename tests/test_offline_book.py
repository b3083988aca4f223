"""The rendered book works offline (issue 10, item 11): a reader at a workshop without wifi opens
``_build/html`` from disk and sees typeset mathematics, every image and working widgets.

A small book is built the way ``python -m robustbook book`` builds the real one (the same
``_config.yml``, staged like ``run.build_book``, ``jupyter-book build -W -n --keep-going``): the
book's front matter (``book/intro.md``, ``book/how_to_read.md``, the bibliography) and one small
notebook executed with papermill, with mathematics, a matplotlib figure and ipywidgets (a slider,
an ``interact`` as the chapters use it, an Image widget driven by a slider). Each page is then
opened from disk in headless Chromium with the network off (``tools/browser_check.py``), and a
page fails on raw TeX in its text, an image that did not load, an unrendered widget, a request
for the network, or a console error.

Chromium is Debian's ``chromium`` package, which ``make test`` installs where it is missing; only
where it cannot be installed are the browser checks skipped (the build and the static checks run).
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("offline-book")]


def _load_browser_check():
    spec = importlib.util.spec_from_file_location("browser_check", ROOT / "tools" / "browser_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["browser_check"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


browser_check = _load_browser_check()

TOC = """\
format: jb-book
root: book/intro
chapters:
  - file: book/how_to_read
  - file: book/offline_check
  - file: book/bibliography
"""

CELLS = [
    new_markdown_cell(
        "# Offline check\n\n"
        "Inline mathematics $\\delta \\in \\Delta$ and a display:\n\n"
        "$$\\min_\\theta \\; \\mathbb{E}_{(x, y)} \\Big[ \\max_{\\delta \\in \\Delta} "
        "\\ell\\big(h_\\theta(x + \\delta), y\\big) \\Big]$$\n\n"
        "```{math}\n:label: eq-offline\n\\|x' - x\\|_\\infty \\le \\varepsilon\n```\n\n"
        "A reference to {eq}`eq-offline`."),
    new_code_cell(
        "import io\n\nimport ipywidgets as widgets\nimport matplotlib.pyplot as plt\n\n"
        "fig, ax = plt.subplots(figsize=(2, 1.5))\nax.plot([0, 1, 2], [0, 1, 4])\nplt.show()"),
    new_code_cell("widgets.IntSlider(value=4, min=0, max=16, description='ε ×255')"),
    new_code_cell(
        "def show(eps=2):\n    f, a = plt.subplots(figsize=(2, 1.5))\n    a.plot([0, eps], [0, eps])\n"
        "    plt.show()\n\n\n"
        "widgets.interact(show, eps=widgets.SelectionSlider(options=[0, 1, 2, 4], value=2, description='ε'));"),
    new_code_cell(
        "def png(v):\n    f, a = plt.subplots(figsize=(1.5, 1.5))\n    a.bar([0], [v])\n"
        "    buf = io.BytesIO()\n    f.savefig(buf, format='png', dpi=40)\n    plt.close(f)\n"
        "    return buf.getvalue()\n\n\n"
        "slider = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, description='δx')\n"
        "image = widgets.Image(value=png(0.5), format='png')\n"
        "slider.observe(lambda ch: setattr(image, 'value', png(ch['new'])), names='value')\n"
        "widgets.VBox([slider, image])"),
]

#: Every page of the small book; index.html redirects to book/intro.html.
PAGES = ["index.html", "book/intro.html", "book/how_to_read.html", "book/offline_check.html",
         "book/bibliography.html", "genindex.html", "search.html"]


@pytest.fixture(scope="module")
def small_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the small book like ``robustbook.run.build_book`` and return its ``_build/html``."""
    import papermill as pm

    from robustbook.run import stage_notebook

    tmp = tmp_path_factory.mktemp("offline-book")
    stage = tmp / "stage"
    stage.mkdir()
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / name, stage / name)
    (stage / "_toc.yml").write_text(TOC)
    shutil.copytree(ROOT / "book", stage / "book",
                    ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__"))
    nb = new_notebook(cells=CELLS)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src, executed = tmp / "offline_check.ipynb", tmp / "offline_check.out.ipynb"
    nbformat.write(nb, src)
    pm.execute_notebook(str(src), str(executed), kernel_name="python3", cwd=str(tmp),
                        progress_bar=False, execution_timeout=120)
    assert nbformat.read(executed, as_version=4).metadata.get("widgets"), "papermill stored no widget state"
    stage_notebook(executed, stage / "book" / "offline_check.ipynb")
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", str(stage), "--path-output", str(tmp), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, f"jupyter-book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return tmp / "_build" / "html"


@pytest.fixture(scope="module")
def browser():
    exe = browser_check.find_chromium()
    if exe is None:
        pytest.skip("Chromium is not installed and `make test` could not install it "
                    "(apt-get install chromium needs root and Debian's archive); "
                    "the rendered book's offline browser checks did not run")
    with browser_check.Browser(exe) as b:
        yield b


# -- without a browser --------------------------------------------------------------------------
REMOTE_ASSET = re.compile(r"<(?:script|img|iframe)\b[^>]*\bsrc=\"(https?:)?//[^\"]*\"|"
                          r"<link\b[^>]*\bhref=\"(https?:)?//[^\"]*\"[^>]*>", re.I)


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_no_script_stylesheet_or_image_from_the_network(small_book: Path, page: str):
    html = (small_book / page).read_text()
    remote = [m.group(0) for m in REMOTE_ASSET.finditer(html)
              if "<link" not in m.group(0) or re.search(r"rel=\"(stylesheet|preload|icon|modulepreload)\"", m.group(0))]
    assert not remote, f"{page} loads from the network: {remote}"


def test_offline_assets_are_bundled(small_book: Path):
    static = small_book / "_static"
    assert (static / "mathjax" / "tex-chtml.js").is_file(), "MathJax (sphinx-mathjax-offline) is not in _static"
    assert list((static / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff")), "MathJax fonts missing"
    assert (static / "ipywidgets" / "embed.js").is_file(), "ipywidgets' embed.js is not in _static"
    page = (small_book / "book" / "offline_check.html").read_text()
    assert 'src="../_static/ipywidgets/embed.js' in page
    assert 'src="../_static/mathjax/tex-chtml.js' in page


# -- in a browser with the network off ----------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(small_book: Path, browser, page: str):
    report = browser.check_page((small_book / page).as_uri())
    assert not report.problems, f"{page} is broken offline:\n  " + "\n  ".join(report.problems)
    if page in ("index.html", "book/intro.html"):
        assert report.math >= 2, f"{page}: the front matter's formulas were not typeset ({report.math})"
    if page == "book/offline_check.html":
        assert report.math >= 3, f"only {report.math} formulas typeset"
        assert report.images >= 1, "the executed figure is not on the page"
        assert report.widgets >= 3, f"only {report.widgets} widget views on the page"


def test_checker_fails_on_the_cdn_build(small_book: Path, browser):
    """The same page with MathJax and the widget manager from CDNs (the build before this fix) fails."""
    good = small_book / "book" / "offline_check.html"
    html = good.read_text()
    cdn = (html.replace('src="../_static/mathjax/tex-chtml.js', 'src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js')
               .replace('src="../_static/ipywidgets/embed.js',
                        'src="https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@1.0.6/dist/embed-amd.js'))
    assert cdn != html
    bad = good.with_name("offline_check_cdn.html")
    bad.write_text(cdn)
    try:
        problems = "\n".join(browser.check_page(bad.as_uri()).problems)
    finally:
        bad.unlink()
    assert "raw TeX" in problems and "\\delta" in problems
    assert "network request" in problems and "cdn.jsdelivr.net" in problems
    assert "ipywidgets were not rendered" in problems
    assert "Failed to load resource" in problems


def test_checker_fails_on_a_missing_image_and_a_console_error(tmp_path: Path, browser):
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><html><head><title>t</title></head><body>'
                    '<p>fine text</p><img src="missing.png"><img src="data:image/gif;base64,'
                    'R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==">'
                    '<script>console.error("boom")</script>'
                    '<script>setTimeout(() => { throw new Error("late") }, 0)</script></body></html>')
    problems = browser.check_page(page.as_uri()).problems
    text = "\n".join(problems)
    assert "image did not load: missing.png" in text
    assert "console.error: boom" in text
    assert "uncaught exception" in text and "late" in text
    assert not any("data:image" in p for p in problems), problems  # the loaded image is fine
    page.write_text("<!doctype html><html><head><title>t</title></head><body><p>fine</p></body></html>")
    assert browser.check_page(page.as_uri()).problems == []
