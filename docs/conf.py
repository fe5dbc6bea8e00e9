# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Sphinx configuration of the astro_deepcr documentation (sphinx-astropy theme, numpydoc, automodapi).

Build with ``sphinx-build -W -b html docs docs/_build/html`` (or ``tox -e
build_docs``). Nothing is fetched from the network: intersphinx is off, so
references to other packages' objects render as plain code.
"""

import datetime
import os
import sys

try:
    from sphinx_astropy.conf.v2 import *  # noqa: F403  (theme, numpydoc, automodapi, doctest settings)
except ImportError:  # pytest imports this file to look for doctests; sphinx-astropy is a docs extra
    extensions = []  # noqa: F405

sys.path.insert(0, os.path.abspath(".."))

from astro_deepcr import __version__  # noqa: E402

project = "astro_deepcr"
author = "astro_deepcr developers"
copyright = f"2025-{datetime.date.today().year}, {author}"
version = release = __version__

# No internet where the docs are built: no intersphinx inventories.
intersphinx_mapping = {}
extensions = [ext for ext in extensions if ext != "sphinx.ext.intersphinx"]  # noqa: F405

html_static_path = ["_static"]
exclude_patterns = ["_build", "api/*.rst.txt", "**/.ipynb_checkpoints"]
html_title = f"astro_deepcr {version}"
html_theme_options = {
    "github_url": "https://github.com/astro-deepcr/astro_deepcr",
    "use_edit_page_button": False,
    "navigation_with_keys": False,
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False

# automodapi: one page per object under docs/api/, no inheritance diagrams (graphviz is not needed)
automodapi_inheritance_diagram = False
automodsumm_inherited_members = False
numpydoc_show_class_members = False


# |cr_libraries|: the cosmic-ray libraries that `evaluate --library` and `adapt --check-library` accept, from the
# registry itself (astro_deepcr.evaluation.libraries.LIBRARIES), so the pages never list fewer or more.
from astro_deepcr.evaluation.libraries import LIBRARIES  # noqa: E402

rst_epilog = globals().get("rst_epilog", "") + (
    "\n.. |cr_libraries| replace:: " + ", ".join(f"``{name}``" for name in LIBRARIES) + "\n")
