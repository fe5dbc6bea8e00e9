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
