# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Fixtures shared by the test modules."""

import pytest


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: tiny convolutions pay more for thread start-up and spinning than they save
    on a busy machine. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def benchmark_script():
    """``benchmark_script(name)``: a ``benchmarks/`` script imported as a module (it imports its siblings, so
    ``benchmarks/`` is on ``sys.path`` while it loads); skips where that folder is absent (an installed package)."""
    import importlib
    import pathlib
    import sys

    folder = pathlib.Path(__file__).parents[1] / "benchmarks"
    if not folder.is_dir():
        pytest.skip("benchmarks/ not available (installed package)")

    def load(name):
        sys.path.insert(0, str(folder))
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(str(folder))

    return load
