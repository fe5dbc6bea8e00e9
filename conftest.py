# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Session-wide test settings: the bfloat16 verdicts of `astro_deepcr.bf16_check` go to a temporary folder
(subprocesses inherit it), never into the user's cache; a verdict measured by one test serves the session."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _bf16_verdicts_in_a_temporary_folder(tmp_path_factory):
    from astro_deepcr.bf16_check import CACHE_ENV

    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("bf16_verdicts"))
    yield
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture
def verdict_cache(tmp_path, monkeypatch):
    """An empty verdict folder and nothing remembered by this process (a fresh process on a fresh machine);
    returns ``provide(model, backend, passed)``, which stores a verdict as if measured here (tests/verdicts.py)."""
    from astro_deepcr import bf16_check
    from tests.verdicts import provide_verdict

    monkeypatch.setenv(bf16_check.CACHE_ENV, str(tmp_path / "bf16_verdicts"))
    monkeypatch.setattr(bf16_check, "_memo", {})
    return provide_verdict


@pytest.fixture(autouse=True)
def _no_validation_notice_in_doctests(request):
    """A doctest that happens to be the first use of a model on a bf16 CPU (or with ASTRO_DEEPCR_NATIVE_BF16=1)
    would print the INFO notice of its validation; the examples show their own output only."""
    if "doctest" not in type(request.node).__name__.lower():
        yield
        return
    from astropy import log

    level = log.level
    log.setLevel("WARNING")
    try:
        yield
    finally:
        log.setLevel(level)
