# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of astro_deepcr.visualization: DS9 regions against the mask, quick-look PNGs, plot_mask."""

import sys

import numpy as np
import pytest
from scipy import ndimage

from astro_deepcr import DeepCR
from astro_deepcr.datasets import load_hst_example
from astro_deepcr.visualization import (
    cr_objects,
    cr_outline,
    flagged_file_products,
    mask_statistics,
    plot_mask,
    read_regions,
    write_quicklook,
    write_regions,
)

pytest.importorskip("matplotlib")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: a 512 x 512 part of the real ACS/HRC frame (47 Tuc: crowded, saturated stars, ~1/4 of its cosmic rays)
HRC_CUTOUT = (slice(256, 768), slice(256, 768))


@pytest.fixture(scope="module")
def hrc():
    """Cutout of the real HRC frame, its DQ-bad pixels and the ACS-WFC mask (DQ respected as by flag)."""
    try:
        example = load_hst_example()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    image, dq = example.science[HRC_CUTOUT], example.dq[HRC_CUTOUT]
    bad = (dq & ~(4096 | 8192)) != 0
    cr_mask = DeepCR("ACS-WFC", device="cpu", progress=False).mask(image, inmask=bad)
    return image, bad, cr_mask


def polygon_area(polygon):
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def check_regions_against_mask(path, cr_mask):
    """One region per 8-connected object, in label order, containing exactly its (hole-filled) pixels."""
    from matplotlib.path import Path

    labels, n_objects = cr_objects(cr_mask)
    assert n_objects == ndimage.label(cr_mask, structure=np.ones((3, 3)))[1]
    polygons = read_regions(path)
    assert len(polygons) == n_objects
    for number, (polygon, box) in enumerate(zip(polygons, ndimage.find_objects(labels), strict=True), start=1):
        component = labels[box] == number
        filled = ndimage.binary_fill_holes(component)
        # DS9 centres of 0-based pixel (y, x) are (x + 1, y + 1); they lie half a pixel inside the outline
        ys, xs = np.mgrid[box]
        inside = Path(polygon).contains_points(np.c_[xs.ravel() + 1, ys.ravel() + 1]).reshape(component.shape)
        np.testing.assert_array_equal(inside, filled)
        assert polygon_area(polygon) == filled.sum()
        centroid_y, centroid_x = np.array(ndimage.center_of_mass(component)) + [box[0].start + 1, box[1].start + 1]
        assert polygon[:, 0].min() < centroid_x < polygon[:, 0].max()
        assert polygon[:, 1].min() < centroid_y < polygon[:, 1].max()


def test_outline_of_diagonal_pixels_is_one_polygon():
    """8-connectivity: two pixels touching at a corner are one cosmic ray with one outline."""
    component = np.zeros((4, 4), bool)
    component[1, 1] = component[2, 2] = True
    outline = cr_outline(component)
    assert polygon_area(outline) == 2
    assert outline[:, 0].min() == 0.5 and outline[:, 0].max() == 2.5  # pixel x=1 spans 0.5..1.5


def test_single_pixel_region_in_ds9_coordinates(tmp_path):
    """DS9 is 1-based: 0-based pixel (y=2, x=3) is the square 3.5..4.5 x 2.5..3.5."""
    cr_mask = np.zeros((6, 6), bool)
    cr_mask[2, 3] = True
    assert write_regions(tmp_path / "one.reg", cr_mask) == 1
    text = (tmp_path / "one.reg").read_text()
    assert text.startswith("# Region file format: DS9") and "\nimage\n" in text
    (polygon,) = read_regions(tmp_path / "one.reg")
    assert sorted(map(tuple, polygon)) == [(3.5, 2.5), (3.5, 3.5), (4.5, 2.5), (4.5, 3.5)]


def test_regions_of_random_mask(tmp_path):
    """Dense random mask: pinches, holes and long chains all give one exact polygon per object."""
    cr_mask = np.random.default_rng(3).random((80, 70)) < 0.3
    write_regions(tmp_path / "random.reg", cr_mask)
    check_regions_against_mask(tmp_path / "random.reg", cr_mask)


def test_regions_and_quicklook_of_real_hrc_frame(tmp_path, hrc):
    image, bad, cr_mask = hrc
    # measured: 1154 CR pixels in 340 objects in this cutout (ACS-WFC model, float32 on CPU)
    assert 1000 < cr_mask.sum() < 1300 and 290 < ndimage.label(cr_mask, structure=np.ones((3, 3)))[1] < 390
    assert not (cr_mask & bad).any()
    n_regions = write_regions(tmp_path / "hrc.reg", cr_mask)
    check_regions_against_mask(tmp_path / "hrc.reg", cr_mask)
    numbers = write_quicklook(tmp_path / "hrc.png", image, cr_mask, bad=bad, title="j8bt06nyq SCI,1")
    assert numbers == mask_statistics(image, cr_mask, bad)
    assert numbers["n_cr_objects"] == n_regions and numbers["n_cr_pixels"] == cr_mask.sum()
    png = (tmp_path / "hrc.png").read_bytes()
    assert png[:8] == PNG_SIGNATURE
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1152, 585)  # figsize (4 + 2.2 * 4, 6.5) at 90 dpi


def test_mask_statistics_counts_bright_pixels():
    image = np.full((100, 100), 10.0)
    image[50, 50:60] = 1000.0  # 10 bright pixels; 0.5 % of 10000 good pixels is 50
    image[20:25, 20:25] = 500.0
    cr_mask = np.zeros(image.shape, bool)
    cr_mask[50, 50:53] = True  # 3 of the brightest flagged
    cr_mask[5, 5] = cr_mask[6, 6] = True  # one diagonal object
    bad = np.zeros(image.shape, bool)
    bad[90:, :] = True  # 1000 bad pixels: 9000 good, 45 brightest
    numbers = mask_statistics(image, cr_mask, bad)
    assert numbers == {"n_cr_pixels": 5, "n_cr_objects": 2, "fraction_flagged": 5 / 9000, "n_bright": 45,
                       "n_bright_flagged": 3, "largest_object": 3, "n_saturated": 0, "n_rim_flagged": 0}


def saturated_scene():
    """A saturated star with a flagged bleed-trail rim (40 px) and a 6-px cosmic ray far from it."""
    image = np.random.default_rng(1).normal(100.0, 5.0, (120, 120))
    saturated = np.zeros(image.shape, bool)
    saturated[30:70, 58:61] = True  # the trail
    saturated[45:52, 55:64] = True  # the core
    image[saturated] = 150000.0
    cr_mask = np.zeros(image.shape, bool)
    cr_mask[30:70, 61] = True  # the rim of the trail, flagged as a network does: 40 px, the largest object
    cr_mask[100, 10:16] = True  # a real cosmic ray
    return image, saturated, cr_mask


def test_quicklook_lists_cosmic_rays_not_bleed_trails(tmp_path):
    from astro_deepcr.visualization import _largest

    image, saturated, cr_mask = saturated_scene()
    plain = mask_statistics(image, cr_mask)
    assert plain["largest_object"] == 40 and plain["n_rim_flagged"] == 0
    numbers = mask_statistics(image, cr_mask, saturated=saturated)
    assert numbers["largest_object"] == 6 and numbers["n_cr_objects"] == 2
    assert numbers["n_saturated"] == saturated.sum() and numbers["n_rim_flagged"] == 40
    labels, _ = cr_objects(cr_mask)
    near = ndimage.binary_dilation(saturated, np.ones((7, 7), bool))
    listed = _largest(labels, 4, near)
    assert [name for _, _, name in listed] == ["CR 2: 6 px"] and listed[0][:2] == (100, 13)
    assert [name for _, _, name in _largest(labels, 4, np.zeros_like(near))] == ["CR 1: 40 px", "CR 2: 6 px"]
    assert write_quicklook(tmp_path / "sat.png", image, cr_mask, saturated=saturated) == numbers
    with pytest.raises(ValueError, match="saturated mask shape"):
        mask_statistics(image, cr_mask, saturated=saturated[:5])


def test_plot_mask_on_given_axes_and_bad_shapes():
    from matplotlib.figure import Figure

    image = np.random.default_rng(0).normal(100, 5, (40, 50))
    cr_mask = np.zeros(image.shape, bool)
    cr_mask[10, 10:14] = True
    ax = Figure().add_subplot()
    assert plot_mask(image, cr_mask, ax=ax, title="t", origin=(100, 200)) is ax
    assert len(ax.images) == 2 and ax.get_title() == "t"
    assert ax.images[0].get_extent() == [199.5, 249.5, 99.5, 139.5]
    with pytest.raises(ValueError, match="mask shape"):
        plot_mask(image, cr_mask[:, :10], ax=ax)
    with pytest.raises(ValueError, match="2-D"):
        mask_statistics(image[0], cr_mask[0])


def test_clear_error_without_matplotlib(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        write_quicklook(tmp_path / "x.png", np.zeros((8, 8)), np.zeros((8, 8), bool))
    # regions need no matplotlib
    assert write_regions(tmp_path / "x.reg", np.eye(8, dtype=bool)) == 1


def test_flagged_file_products(tmp_path):
    """PNG and regions per chip of a flagged _flc: the regions are the objects of DQ & crbit."""
    from astropy.io import fits

    from astro_deepcr.drizzle import flag_cosmic_rays
    from astro_deepcr.training.flc import write_flc_stack

    stack = write_flc_stack(tmp_path, n_exposures=1, chip_shape=(64, 128), seed=2)
    flag_cosmic_rays(stack.files[0])
    written = flagged_file_products(stack.files[0], tmp_path / "look")
    root = (tmp_path / "look" / stack.files[0].split("/")[-1].split(".fits")[0]).as_posix()
    assert written == [f"{root}_sci1.png", f"{root}_sci1.reg", f"{root}_sci2.png", f"{root}_sci2.reg"]
    with fits.open(stack.files[0]) as hdul:
        for extver in (1, 2):
            cr_mask = (hdul["DQ", extver].data & 4096) != 0
            assert cr_mask.any()
            check_regions_against_mask(f"{root}_sci{extver}.reg", cr_mask)

