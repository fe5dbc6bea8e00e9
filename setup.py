# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Build hook: the version comes from git (setuptools_scm) *and* CHANGES.rst.

Without a release tag (a fresh clone, a fork, a tarball of a branch)
setuptools_scm alone would call every commit ``0.1.devN``. The top entry of
CHANGES.rst names the version being prepared (``0.2.0 (unreleased)``), so a
commit N commits after the last release tag (or after the first commit) is
``0.2.0.devN``, and the commit tagged with that version is ``0.2.0``. Once a
tag is at or past the top entry, setuptools_scm's own guess applies. The rest
of the configuration is in setup.cfg and pyproject.toml.
"""

import os
import re

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
#: ``0.2.0 (unreleased)`` or ``0.1.0 (2026-11-30)`` as the first line of an entry
_ENTRY = re.compile(r"^(\d+(?:\.\d+)+)\s+\((?:unreleased|\d{4}-\d{2}-\d{2})\)\s*$", re.MULTILINE)


def changes_version(text):
    """The version of the top entry of CHANGES.rst ``text``."""
    match = _ENTRY.search(text)
    if match is None:
        raise ValueError("CHANGES.rst has no entry 'X.Y.Z (unreleased)' or 'X.Y.Z (YYYY-MM-DD)'")
    return match.group(1)


def version_scheme(scm_version, changes=None):
    """setuptools_scm version scheme: the top CHANGES.rst entry, ``.devN`` unless on its tag."""
    from packaging.version import Version

    if changes is None:
        with open(os.path.join(HERE, "CHANGES.rst"), encoding="utf-8") as stream:
            changes = stream.read()
    top = changes_version(changes)
    tag = Version(str(scm_version.tag))
    if tag > Version(top) or (tag == Version(top) and not scm_version.exact):
        from setuptools_scm.version import guess_next_dev_version

        return guess_next_dev_version(scm_version)  # released: the next version is not written down yet
    if tag == Version(top):
        return top
    return f"{top}.dev{scm_version.distance}"


if __name__ == "__main__":
    setup(use_scm_version={"version_scheme": version_scheme, "version_file": "astro_deepcr/_version.py",
                           "fallback_version": "0.2.0.dev0"})
