# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Weights and model cards of the built-in astro_deepcr models.

``models.json`` lists every model (architecture, input normalisation,
default threshold, instrument, units, provenance, measured metrics and the
SHA-256 of its ``.safetensors`` file). Use `astro_deepcr.list_models` and
`astro_deepcr.model_info` rather than reading this folder directly.

The ACS/WFC, WFC3/UVIS and DECam weights are converted from deepCR 0.3.1
(Copyright (c) 2019, UC Berkeley, BSD-3-Clause; see licenses/DEEPCR_LICENSE.rst)
by ``tools/convert_deepcr_zoo.py``.
"""
