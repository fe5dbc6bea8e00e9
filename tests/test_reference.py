# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Every imported model against the reference implementation, deepCR 0.3.1.

The reference builds its own networks and loads its own ``.pth`` files; this
package only loads the converted safetensors. Models that deepCR 0.3.1 ships
but does not list in its registry are added to its registry here with their
published architecture, so the reference code path loads them itself.
"""

import numpy as np
import pytest

from astro_deepcr import DeepCR, zoo
from astro_deepcr.training.simulate import simulate_exposure

deepCR = pytest.importorskip("deepCR")  # noqa: N816  (test-only dependency)
learned_models = pytest.importorskip("learned_models")

from deepCR.unet import UNet2Sigmoid  # noqa: E402
from deepCR.unet_batchnorm import UNet2BatchNorm, UNet2SigmoidBatchNorm, UNet3BatchNorm  # noqa: E402

REFERENCE_ARCH = {
    "ACS-WFC": (UNet2SigmoidBatchNorm, (1, 1, 32)),
    "ACS-WFC-F435W": (UNet2SigmoidBatchNorm, (1, 1, 32)),
    "ACS-WFC-F606W": (UNet2SigmoidBatchNorm, (1, 1, 32)),
    "ACS-WFC-F814W": (UNet2SigmoidBatchNorm, (1, 1, 32)),
    "ACS-WFC-F606W-2-4": (UNet2SigmoidBatchNorm, (1, 1, 4)),
    "WFC3-UVIS": (UNet2Sigmoid, (1, 1, 32)),
    "decam": (UNet2SigmoidBatchNorm, (1, 1, 32)),
}
REFERENCE_INPAINT = {
    "ACS-WFC-F606W-2-32": (UNet2BatchNorm, (2, 1, 32)),
    "ACS-WFC-F606W-3-32": (UNet3BatchNorm, (2, 1, 32)),
}


def _reference(mask, inpaint=None):
    spec = zoo.get_model(mask)
    learned_models.mask_dict.setdefault(mask, [*REFERENCE_ARCH[mask], spec.scale])
    if inpaint:
        learned_models.inpaint_dict.setdefault(inpaint, list(REFERENCE_INPAINT[inpaint]))
    return deepCR.deepCR(mask=mask, inpaint=inpaint, device="CPU")


def _inputs():
    """A random image and a simulated star field with CRs, both in electrons; shapes are
    multiples of 4 so that the reference's top-left padding equals ours trivially."""
    rng = np.random.default_rng(2020)
    random_image = rng.normal(100, 40, (96, 128)).astype(np.float32)
    field = simulate_exposure((128, 160), "globular", exptime=600, seed=24)["image"]
    return {"random": random_image, "starfield": field}


# the networks are compared on images outside some models' domain (random noise, ADU guessed): the core's
# flagged-fraction alarm is expected there and says nothing about the comparison
OUT_OF_DOMAIN = "ignore:deepCR model .* flagged:astropy.utils.exceptions.AstropyUserWarning"


@pytest.mark.filterwarnings(OUT_OF_DOMAIN)
@pytest.mark.parametrize("name", sorted(REFERENCE_ARCH))
@pytest.mark.parametrize("which", ["random", "starfield"])
def test_mask_probability_equals_reference(name, which):
    image = _inputs()[which]
    spec = zoo.get_model(name)
    if spec.units == "adu":
        image = image / 4.0  # any plausible ADU image; the networks are compared, not the physics
    reference = _reference(name).clean(image, binary=False, segment=False, inpaint=False)
    ours = DeepCR(name, device="cpu", tile_size=48, precision="float32").probability(image)
    assert np.abs(ours - reference).max() < 1e-4


@pytest.mark.parametrize("name", sorted(REFERENCE_INPAINT))
def test_inpainting_equals_reference(name):
    image = _inputs()["starfield"]
    spec = zoo.get_model(name)
    # the reference scales the inpainting input by the *mask* model's scale; pair it with a
    # mask model of the same scale so both see identical network inputs
    mask_name = "ACS-WFC-F606W-2-4" if spec.scale == 100 else "ACS-WFC"
    reference_model = _reference(mask_name, inpaint=name)
    cr_mask = reference_model.clean(image, threshold=0.5, segment=False, inpaint=False).astype(bool)
    assert cr_mask.sum() > 10
    reference = reference_model.inpaint(image, cr_mask.astype(np.float32))
    ours = DeepCR(mask_name, device="cpu", tile_size=64, precision="float32").inpaint(image, cr_mask, method=name)
    scale = np.abs(reference[cr_mask]).max()
    assert np.abs(ours[cr_mask] - reference[cr_mask]).max() < 1e-4 * scale
    np.testing.assert_array_equal(ours[~cr_mask], image[~cr_mask])


@pytest.mark.parametrize("which", ["random", "starfield"])
@pytest.mark.filterwarnings(OUT_OF_DOMAIN)  # without drizzlepac's TinyTim PSFs the simulated starfield flags ~10 %
def test_default_precision_against_reference(which):
    """The default (``precision="auto"``) takes what this machine reports and says which precision it chose:
    float32 equals the reference; bfloat16 (native-bf16 CPUs, or ASTRO_DEEPCR_NATIVE_BF16=1) agrees in the mask."""
    from astro_deepcr.detection import precision_verdict
    from astro_deepcr.engine import native_bfloat16

    image = _inputs()[which]
    spec = zoo.get_model("ACS-WFC")
    model = DeepCR("ACS-WFC", device="cpu", tile_size=48)
    # on a bf16 CPU (or ASTRO_DEEPCR_NATIVE_BF16=1): validated here on first use (astro_deepcr.bf16_check)
    precision, verdict = precision_verdict(spec, "auto", "cpu")
    assert model.precision_used == precision
    assert verdict.startswith("passed here") if precision == "bfloat16" else native_bfloat16("cpu") or (
        verdict == "no native bfloat16")
    reference = _reference("ACS-WFC").clean(image, binary=False, segment=False, inpaint=False)
    ours = model.probability(image)
    if model.precision_used == "float32":
        assert np.abs(ours - reference).max() < 1e-4
    else:
        # measured (torch bf16 emulated on AVX2): max |diff| 0.017 (random), 0.0098 (starfield); 0 of 1 and
        # 0 of 203 mask pixels flip
        assert np.abs(ours - reference).max() < 0.05
        assert ((ours > 0.5) != (reference > 0.5)).sum() <= max(2, 0.02 * (reference > 0.5).sum())
