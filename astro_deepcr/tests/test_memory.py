# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Peak memory is set by the tile size, not by the image size (measured, in fresh processes)."""

import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).parents[2] / "benchmarks" / "memory_profile.py"


def _peak(shape, tile, method="mask"):
    if not SCRIPT.exists():
        pytest.skip("benchmarks/ not available (installed package)")
    done = subprocess.run([sys.executable, str(SCRIPT), "--shape", *map(str, shape), "--tile", str(tile),
                           "--method", method], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_scales_with_tile_not_image():
    small = _peak((2048, 2048), 256)
    large = _peak((4096, 4096), 256)
    big_tile = _peak((4096, 4096), 1024)
    pixels = 4096 * 4096 - 2048 * 2048
    per_pixel = (large["peak_mib"] - small["peak_mib"]) * 2**20 / pixels
    # image-sized arrays only: float32 copy, scaled input, output, a few boolean masks (~16 B/px);
    # one full-resolution 32-channel activation alone would cost 128 B/px
    assert per_pixel < 24, per_pixel
    # the tile is what sets the network's working memory
    assert big_tile["peak_mib"] - large["peak_mib"] > 300
    assert large["cr_pixels"] == big_tile["cr_pixels"]


@pytest.mark.slow
def test_8k_image_runs_within_the_tile_memory_bound():
    medium = _peak((4096, 4096), 512)
    huge = _peak((8192, 8192), 512)
    pixels = 8192 * 8192 - 4096 * 4096
    # same tile: going from 16 to 64 megapixels costs only image-sized arrays
    assert (huge["peak_mib"] - medium["peak_mib"]) * 2**20 / pixels < 24
