# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Property-based tests of the tiled engine (hypothesis)."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astro_deepcr import DeepCR
from astro_deepcr.engine import prepare_network, run_tiled
from astro_deepcr.nets import UNet

_NETS = {}


def _net(depth, in_channels):
    key = (depth, in_channels)
    if key not in _NETS:
        torch.manual_seed(depth * 10 + in_channels)
        net = UNet(in_channels=in_channels, depth=depth, width=4, sigmoid=in_channels == 1).eval()
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        _NETS[key] = (net, prepare_network(net, "cpu"))
    return _NETS[key]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    height=st.integers(1, 90),
    width=st.integers(1, 90),
    depth=st.integers(1, 3),
    in_channels=st.integers(1, 2),
    tile=st.integers(1, 100),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_tiled_always_equals_whole_image(height, width, depth, in_channels, tile, batch, seed):
    net, fast = _net(depth, in_channels)
    inputs = np.random.default_rng(seed).normal(0, 3, (in_channels, height, width)).astype(np.float32)
    align = 2**depth
    pad = (-height % align, -width % align)
    padded = np.pad(inputs, ((0, 0), (pad[0], 0), (pad[1], 0)), mode="reflect")  # engine._mirrored's strip
    with torch.no_grad():
        whole = net(torch.from_numpy(padded)[None])[0, 0].numpy()[pad[0]:, pad[1]:]
    tiled = run_tiled(fast, inputs, tile_size=tile, batch_size=batch, progress=False)
    assert tiled.shape == (height, width)
    np.testing.assert_allclose(tiled, whole, atol=2e-5 * max(1.0, np.abs(whole).max()))


_DTYPES = ["<f4", ">f4", "<f8", ">f8", "<f2", "<i2", ">i4", "<u2", "u1", "<i8", ">u4"]


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(0, 40), st.integers(0, 40)) | st.tuples(st.integers(0, 5)) |
    st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 3)),
    dtype=st.sampled_from(_DTYPES + ["c8", "?"]),
    nan_fraction=st.sampled_from([0.0, 0.1, 1.0]),
    tile=st.integers(1, 64),
    seed=st.integers(0, 1000),
)
def test_deepcr_never_crashes_outside_the_documented_errors(shape, dtype, nan_fraction, tile, seed):
    rng = np.random.default_rng(seed)
    image = (rng.normal(60, 10, shape) + (rng.random(shape) > 0.97) * 3000).astype(dtype)
    if nan_fraction and np.dtype(dtype).kind == "f" and image.size:
        image[rng.random(shape) < nan_fraction] = np.nan
    model = DeepCR("ACS-WFC-F606W-2-4", device="cpu", tile_size=tile, progress=False)
    valid = len(shape) == 2 and 0 not in shape and np.dtype(dtype).kind in "iuf"
    if not valid:
        with pytest.raises((ValueError, TypeError), match="2-D|empty|real numeric dtype"):
            model.clean(image)
        return
    import warnings

    with warnings.catch_warnings():
        from astropy.utils.exceptions import AstropyUserWarning

        warnings.simplefilter("ignore", AstropyUserWarning)  # all-bad images warn by design
        mask, cleaned = model.clean(image)
    finite = np.isfinite(image.astype(np.float64))
    assert mask.shape == image.shape and mask.dtype == bool
    assert not mask[~finite].any()
    assert np.isfinite(cleaned[finite]).all()
