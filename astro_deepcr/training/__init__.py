# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Training tools: simulated and real labelled data, and the deepCR trainer."""
