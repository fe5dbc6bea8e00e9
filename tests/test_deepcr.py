# Licensed under a 3-clause BSD style license - see LICENSE.rst
import pathlib
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning

from astro_deepcr import DeepCR
from astro_deepcr.deepcr import as_image

GOLDEN = pathlib.Path(__file__).parent / "data" / "golden_outputs.npz"


@pytest.fixture(scope="module")
def model():
    return DeepCR("ACS-WFC", device="cpu", progress=False)


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(42)
    image = rng.normal(60, 8, (96, 80)).astype(np.float32)
    image[20, 10:16] += 1500  # a CR track
    image[60:62, 50] += 900
    y, x = np.mgrid[:96, :80]
    image += 4000 * np.exp(-((y - 70) ** 2 + (x - 20) ** 2) / (2 * 1.2**2))  # a star
    truth = np.zeros(image.shape, bool)
    truth[20, 10:16] = truth[60:62, 50] = True
    return image, truth


def test_golden_outputs():
    """Against stored outputs of deepCR 0.3.1 itself (``benchmarks/make_golden.py`` regenerates the file)."""
    golden = np.load(GOLDEN)
    image, crmask = golden["image"], golden["crmask"]
    assert crmask.sum() == 13  # the three tracks of make_golden.make_image, nothing else
    for name in ["ACS-WFC", "ACS-WFC-F606W-2-4", "WFC3-UVIS"]:
        probability = DeepCR(name, device="cpu", precision="float32").probability(image)
        # measured max |difference| 1.7e-6 (ACS-WFC), 1.1e-6 (2-4), 5.5e-7 (WFC3-UVIS), float32, 2026-11-25
        np.testing.assert_allclose(probability, golden[f"prob_{name}"], rtol=0, atol=5e-6)
    cleaned = DeepCR("ACS-WFC", device="cpu", precision="float32").inpaint(image, crmask,
                                                                          method="ACS-WFC-F606W-2-32")
    # measured max relative difference 5.7e-7 over the masked pixels; the others are the input, exactly
    np.testing.assert_allclose(cleaned[crmask], golden["inpaint_ACS-WFC-F606W-2-32"][crmask], rtol=3e-6, atol=0)
    np.testing.assert_array_equal(cleaned[~crmask], image[~crmask])


def test_finds_cosmic_rays_and_spares_the_star(model, scene):
    image, truth = scene
    mask = model.mask(image)
    assert mask[truth].all()
    assert mask.sum() < truth.sum() + 10
    assert not mask[68:73, 18:23].any()


@pytest.mark.parametrize("inpaint", ["medmask", "biharmonic", "ACS-WFC-F606W-2-32", "ACS-WFC-F606W-3-32"])
def test_clean_replaces_only_masked_pixels(model, scene, inpaint):
    image, truth = scene
    mask, cleaned = model.clean(image, inpaint=inpaint)
    assert mask.dtype == bool and cleaned.dtype == np.float32
    np.testing.assert_array_equal(cleaned[~mask], image[~mask])
    assert np.abs(cleaned[truth] - 60).max() < 50  # the 900-1500 e- excess is gone


def test_threshold_default_and_validation(model, scene):
    image, _ = scene
    assert model.threshold == 0.5
    probability = model.probability(image)
    np.testing.assert_array_equal(model.mask(image), probability > 0.5)
    np.testing.assert_array_equal(model.mask(image, threshold=0.9), probability > 0.9)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="threshold must lie in"):
            model.mask(image, threshold=bad)
    with pytest.raises(TypeError, match="threshold must be a number"):
        model.mask(image, threshold="high")
    assert DeepCR("WFC3-UVIS", device="cpu").threshold == 0.1


def test_input_is_never_modified(model, scene):
    image, _ = scene
    image = image.copy()
    image[5, 5] = np.nan
    before = image.copy()
    model.clean(image)
    np.testing.assert_array_equal(image, before)
    masked = np.ma.array(image.copy(), mask=np.zeros(image.shape, bool))
    model.clean(masked)
    assert not masked.mask.any()


@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f8", ">f8", "<f2", "<i2", ">i4", "<u2", "u1", "<i8"])
def test_any_real_dtype_and_byte_order(model, scene, dtype):
    image, _ = scene
    converted = np.clip(image, 0, 250 if dtype == "u1" else None).astype(dtype)
    reference = model.probability(converted.astype(np.float32))
    np.testing.assert_allclose(model.probability(converted), reference, atol=1e-6)
    mask, cleaned = model.clean(converted)
    assert cleaned.dtype == (np.float64 if np.dtype(dtype).kind == "f" and np.dtype(dtype).itemsize == 8
                             else np.float32)


def test_non_finite_pixels_are_bad_not_cosmic_rays(model, scene):
    image, truth = scene
    image = image.copy()
    image[40:43, 40:43] = np.nan
    image[10, 70] = np.inf
    image[11, 70] = -np.inf
    probability = model.probability(image)
    assert np.isfinite(probability).all()
    assert probability[40:43, 40:43].max() == 0 and probability[10:12, 70].max() == 0
    mask, cleaned = model.clean(image)
    assert np.isnan(cleaned[40:43, 40:43]).all() and cleaned[10, 70] == np.inf
    assert mask[truth].all()
    # no NaN leaks into the neighbours
    assert np.isfinite(cleaned[38:46, 38:46][~np.isnan(image[38:46, 38:46])]).all()


def test_masked_and_inmask_pixels_are_excluded(model, scene):
    image, truth = scene
    inmask = np.zeros(image.shape, bool)
    inmask[20, 10:16] = True  # say the CR track is a known bad column segment
    assert not model.mask(image, inmask=inmask)[20, 10:16].any()
    masked = np.ma.array(image, mask=inmask)
    mask, cleaned = model.clean(masked)
    assert not mask[20, 10:16].any()
    np.testing.assert_array_equal(cleaned[20, 10:16], image[20, 10:16])
    with pytest.raises(ValueError, match="inmask shape"):
        model.mask(image, inmask=np.zeros((3, 3), bool))


def test_all_bad_image_warns_and_finds_nothing(model):
    image = np.full((16, 16), np.nan)
    with pytest.warns(AstropyUserWarning, match="no good"):
        mask, cleaned = model.clean(image)
    assert not mask.any() and np.isnan(cleaned).all()


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (np.zeros(10), ValueError, "must be 2-D, got a 1-D"),
        (np.zeros((2, 3, 4)), ValueError, "must be 2-D, got a 3-D"),
        (np.float32(3.0), ValueError, "must be 2-D, got a 0-D"),
        (np.zeros((0, 5)), ValueError, "is empty"),
        (np.zeros((4, 4), complex), TypeError, "real numeric dtype"),
        (np.zeros((4, 4), bool), TypeError, "real numeric dtype"),
        (np.array([["a", "b"]]), TypeError, "real numeric dtype"),
        ([[1, 2], [3]], TypeError, "2-D numeric array"),
    ],
)
def test_bad_input_is_a_clear_error(model, bad, error, message):
    with pytest.raises(error, match=message):
        model.clean(bad)


def test_tiny_and_elongated_images(model):
    for shape in [(1, 1), (3, 5), (2, 700), (513, 3)]:
        image = np.full(shape, 60.0, np.float32)
        mask, cleaned = model.clean(image)
        assert mask.shape == shape and not mask.any()


def test_values_near_the_float32_limit_do_not_crash(model):
    image = np.full((16, 16), 60.0)
    image[4, 4] = 1e300  # beyond float32: becomes a bad (non-finite) pixel
    image[8, 8] = 3e38
    with warnings.catch_warnings():
        # a warning is allowed here (network overflow), a crash or a NaN is not
        warnings.simplefilter("ignore", AstropyUserWarning)
        probability = model.probability(image)
    assert np.isfinite(probability).all() and probability[4, 4] == 0


def test_negative_image(model):
    # an all-negative noisy background (over-subtracted sky) has nothing CR-like in it (measured: maximum
    # probability 0.046, nothing flagged), and a CR on it is found exactly (measured: the 6 track pixels only);
    # a sign flip, clipping at zero or negatives treated as bad would change these
    image = -np.abs(np.random.default_rng(0).normal(60, 8, (32, 32)))
    assert not model.mask(image).any()
    image[10, 5:11] += 1500.0
    mask = model.mask(image)
    assert mask.shape == (32, 32)
    assert mask[10, 5:11].all() and mask.sum() <= 8


def test_inpaint_argument_validation(model):
    with pytest.raises(ValueError, match="unknown model 'lanczos'"):
        DeepCR("ACS-WFC", inpaint="lanczos")
    with pytest.raises(ValueError, match="is a mask model, not a inpaint model"):
        model.clean(np.zeros((8, 8)), inpaint="ACS-WFC")
    with pytest.raises(ValueError, match="mask shape"):
        model.inpaint(np.zeros((8, 8)), np.zeros((4, 4), bool))


def test_as_image_returns_a_copy():
    data = np.ones((3, 3), np.float32)
    copy, bad = as_image(data)
    copy[0, 0] = 5
    assert data[0, 0] == 1 and not bad.any()


def test_repr():
    assert repr(DeepCR("ACS-WFC", device="cpu")) == "DeepCR(mask='ACS-WFC', inpaint='medmask', device='cpu')"
