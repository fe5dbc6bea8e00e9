# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The Sphinx documentation: it builds without warnings, the API pages list the entry points, and the CLI
reference documents every option of the parser."""

import os
import re
import subprocess
import sys

import pytest

from astro_deepcr import cli

DOCS = os.path.join(os.path.dirname(__file__), "..", "docs")
# every page of docs/ (a page added without a toctree entry fails test_index_lists_every_page)
PAGES = sorted(name[:-4] for name in os.listdir(DOCS) if name.endswith(".rst") and name != "index.rst") \
    if os.path.isdir(DOCS) else []

needs_docs = pytest.mark.skipif(not os.path.isfile(os.path.join(DOCS, "conf.py")),
                                reason="the docs/ folder is not part of an installed package")


def _subparsers(parser):
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            return action.choices
    return {}


@needs_docs
def test_cli_reference_documents_every_option():
    with open(os.path.join(DOCS, "cli.rst")) as stream:
        reference = stream.read()
    commands = _subparsers(cli.build_parser())
    for name in ("clean", "flag", "drizzle", "models", "bench", "demo"):
        assert f"``{name}``" in reference, f"docs/cli.rst has no section for {name}"
        for action in commands[name]._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help", "-q", "--quiet"):
                    assert option in reference, f"docs/cli.rst does not document {name} {option}"
    assert "--quiet" in reference
    for action in ("list", "info", "--kind"):
        assert action in reference


@needs_docs
def test_the_pages_list_the_cr_libraries_of_the_registry():
    """Audit: docs/cli.rst listed four libraries by hand while ``wfpc2`` was accepted and used in its own example;
    the pages now take the list from `LIBRARIES` (the ``|cr_libraries|`` substitution of docs/conf.py)."""
    import runpy

    from astro_deepcr.evaluation.libraries import LIBRARIES

    epilog = runpy.run_path(os.path.join(DOCS, "conf.py"))["rst_epilog"]
    assert f".. |cr_libraries| replace:: {', '.join(f'``{name}``' for name in LIBRARIES)}\n" in epilog
    for page in ("cli", "training"):
        with open(os.path.join(DOCS, f"{page}.rst")) as stream:
            text = stream.read()
        assert "|cr_libraries|" in text and "hrc, hrc-lacosmic" not in text


@needs_docs
def test_index_lists_every_page():
    with open(os.path.join(DOCS, "index.rst")) as stream:
        index = stream.read()
    for page in PAGES:
        assert re.search(rf"^   {page}$", index, re.MULTILINE), f"{page} is not in the index toctree"


@pytest.mark.slow
@needs_docs
def test_docs_build_without_warnings(tmp_path):
    """``sphinx-build -W`` (warnings are errors) succeeds and the API pages list the entry points."""
    pytest.importorskip("sphinx_astropy")
    pytest.importorskip("sphinx_automodapi")
    html = tmp_path / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
         DOCS, str(html)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-5000:]
    api = (html / "api.html").read_text()
    for name in ("astro_deepcr.cosmicray_deepcr", "astro_deepcr.DeepCR", "astro_deepcr.flag_cosmic_rays",
                 "astro_deepcr.astrodrizzle", "astro_deepcr.drizzle.flag_cosmic_rays",
                 "astro_deepcr.drizzle.astrodrizzle", "astro_deepcr.batch.clean_files"):
        assert f"api/{name}.html" in api, f"the API reference does not link {name}"
    for page in PAGES + ["index"]:
        assert (html / f"{page}.html").is_file()
    assert "Zhang" in (html / "citation.html").read_text()
