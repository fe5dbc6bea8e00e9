# Licensed under a 3-clause BSD style license - see LICENSE.rst
import math

import numpy as np
import pytest
import torch

from astro_deepcr import zoo
from astro_deepcr.engine import halo_for, prepare_network, resolve_device, run_tiled, tile_layout
from astro_deepcr.nets import receptive_radius

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def mask_fast():
    return prepare_network(zoo.load_network("ACS-WFC"), "cpu")


@pytest.fixture(scope="module")
def inpaint_fast():
    return prepare_network(zoo.load_network("ACS-WFC-F606W-3-32"), "cpu")


def _whole(net, inputs):
    """Whole-image inference with the plain network: pad top/left to 2**depth, mirroring the image."""
    align = 2**net.depth
    pad = (-inputs.shape[1] % align, -inputs.shape[2] % align)
    padded = np.pad(inputs, ((0, 0), (pad[0], 0), (pad[1], 0)), mode="reflect")
    with torch.no_grad():
        return net(torch.from_numpy(padded)[None])[0, 0].numpy()[pad[0]:, pad[1]:]


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (5, 7), (67, 131), (130, 66), (257, 200)])
@pytest.mark.parametrize("tile", [4, 24, 64, 1000])
def test_tiled_equals_whole_image_mask_net(mask_fast, shape, tile):
    image = np.random.default_rng(sum(shape)).normal(60, 20, shape).astype(np.float32)
    image[shape[0] // 2, :] += 3000  # a bright streak crossing tile borders
    reference = _whole(zoo.load_network("ACS-WFC"), image[None])
    tiled = run_tiled(mask_fast, image[None], tile_size=tile, progress=False)
    assert tiled.shape == shape and tiled.dtype == np.float32
    assert np.abs(tiled - reference).max() < 1e-5


@pytest.mark.parametrize("tile", [8, 40, 96])
def test_tiled_equals_whole_image_inpaint_net(inpaint_fast, tile):
    rng = np.random.default_rng(3)
    shape = (101, 77)
    holes = rng.random(shape) > 0.95
    inputs = np.stack([np.where(holes, 0, rng.normal(0.6, 0.1, shape)), holes]).astype(np.float32)
    reference = _whole(zoo.load_network("ACS-WFC-F606W-3-32"), inputs)
    tiled = run_tiled(inpaint_fast, inputs, tile_size=tile, progress=False)
    assert np.abs(tiled - reference).max() < 1e-4 * max(1.0, np.abs(reference).max())


def test_the_alignment_strip_mirrors_the_image_as_numpy_reflect():
    from astro_deepcr.engine import _cut

    image = np.arange(5 * 7, dtype=np.float32).reshape(1, 5, 7)
    for pad in [(3, 3), (1, 6), (7, 0)]:  # wider than the image too
        padded = np.pad(image, ((0, 0), (pad[0], 0), (pad[1], 0)), mode="reflect")
        np.testing.assert_array_equal(_cut(image, pad, (0, 5 + pad[0], 0, 7 + pad[1])), padded)
        np.testing.assert_array_equal(_cut(image, pad, (2, 4, 1, 5)), padded[:, 2:4, 1:5])
    single = np.full((1, 1, 1), 4.0, np.float32)
    np.testing.assert_array_equal(_cut(single, (3, 3), (0, 4, 0, 4)), np.full((1, 4, 4), 4.0))


def test_a_frame_off_the_grid_gets_fewer_false_flags_along_its_first_rows():
    """deepCR's zero alignment strip was a cliff the networks flagged (``engine._mirrored``).

    WF4 of the WFPC2 example cut to 499 px (one padded row and column): the first two rows and columns get 281
    flags with the mirrored strip (280 in bfloat16), 355 (357) with zeros, 156 inside a larger cut-out.
    """
    import warnings

    from astro_deepcr.datasets import load_wfpc2_example
    from astro_deepcr.detection import detect

    try:
        chip = load_wfpc2_example(chip=4)["electrons"].astype(np.float32)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the flagged-fraction alarm: WFPC2's chips are outside ground's domain
        found = detect(chip[70:569, 70:569], spec="ground", precision="float32", threads=1).cr_mask
    edge = np.zeros(found.shape, bool)
    edge[:2] = edge[:, :2] = True
    assert 265 <= int((found & edge).sum()) <= 300


def test_tile_layout_is_aligned_and_covers_the_image():
    pad, padded, tiles = tile_layout((101, 77), depth=3, tile_size=30)
    assert pad == (3, 3) and padded == (104, 80)
    covered = np.zeros(padded, int)
    for y0, y1, x0, x1, iy0, iy1, ix0, ix1 in tiles:
        assert y0 % 8 == x0 % 8 == iy0 % 8 == ix0 % 8 == 0
        assert iy0 <= y0 and iy1 >= y1 and ix0 <= x0 and ix1 >= x1
        covered[y0:y1, x0:x1] += 1
    assert (covered == 1).all()


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_halo_covers_the_receptive_field(depth):
    assert halo_for(depth) >= receptive_radius(depth)
    assert halo_for(depth) % 2**depth == 0


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    with pytest.raises(TypeError, match="device must be a string"):
        resolve_device(3)


@pytest.mark.parametrize("spelling", ["CPU", "cpu", "Cpu", " CPU "])
def test_resolve_device_accepts_deepcr_spellings(spelling):
    assert resolve_device(spelling) == torch.device("cpu")


def test_resolve_device_gpu_means_cuda():
    if torch.cuda.is_available():
        assert resolve_device("GPU") == torch.device("cuda")
        assert resolve_device("gpu:0") == torch.device("cuda:0")
    else:
        with pytest.raises(ValueError, match="'GPU' was requested but CUDA is not available"):
            resolve_device("GPU")
    for unknown in ("tpu", "GPU0", "mps", ""):
        with pytest.raises(ValueError, match="unknown device|unsupported device"):
            resolve_device(unknown)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:1")


def test_bad_engine_arguments(mask_fast):
    with pytest.raises(ValueError, match="precision must be one of"):
        run_tiled(mask_fast, np.zeros((1, 8, 8), "f4"), precision="int8")
    with pytest.raises(ValueError, match="tile_size must be a positive"):
        run_tiled(mask_fast, np.zeros((1, 8, 8), "f4"), tile_size=-4)


def test_threads_setting_is_restored(mask_fast):
    before = torch.get_num_threads()
    run_tiled(mask_fast, np.zeros((1, 16, 16), "f4"), threads=1, progress=False)
    assert torch.get_num_threads() == before


@needs_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("precision, tolerance", [("float32", 1e-4), ("float16", 2e-2), ("bfloat16", 5e-2)])
def test_gpu_matches_cpu(precision, tolerance):
    net = zoo.load_network("ACS-WFC")
    image = np.random.default_rng(0).normal(60, 20, (300, 517)).astype(np.float32)
    image[100, 50:60] += 5000
    cpu = run_tiled(prepare_network(net, "cpu"), image[None], tile_size=128, progress=False)
    gpu = run_tiled(prepare_network(net, "cuda"), image[None], tile_size=128, batch_size=4, device="cuda",
                    precision=precision, progress=False)
    assert np.abs(cpu - gpu).max() < tolerance


def test_bfloat16_autocast_on_cpu_is_close(mask_fast):
    image = np.random.default_rng(5).normal(60, 20, (64, 96)).astype(np.float32)
    image[30, 10:20] += 3000
    full = run_tiled(mask_fast, image[None], tile_size=32, progress=False)
    half = run_tiled(mask_fast, image[None], tile_size=32, precision="bfloat16", progress=False)
    assert half.dtype == np.float32
    assert np.abs(full - half).max() < 0.1
    np.testing.assert_array_equal(full[30, 10:20] > 0.5, half[30, 10:20] > 0.5)


class _Stream:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize("progress, tty, shown", [
    (None, True, True), (None, False, False), (True, False, True), (False, True, False)])
def test_progress_bar_only_where_a_person_watches(progress, tty, shown):
    from astro_deepcr.engine import show_progress

    assert show_progress(progress, _Stream(tty)) is shown


def test_no_progress_bar_in_a_log(mask_fast, capsys):
    """progress=None under a non-interactive stderr (pytest's capture, a batch log): nothing is drawn."""
    run_tiled(mask_fast, np.zeros((1, 64, 64), "f4"), tile_size=16)
    assert capsys.readouterr().err == ""


class _CountingRuntime:
    """A stand-in compiled runtime: records the tile shapes it is called on, returns zeros."""

    backend = "openvino"
    depth = 2
    precision = "float32"

    def __init__(self):
        self.shapes = []

    def __call__(self, batch, threads):
        self.shapes.append(batch.shape[2:])
        return np.zeros((batch.shape[0], 1) + batch.shape[2:], np.float32)


@pytest.mark.parametrize("configured, core", [(0, 1024), (300, 300)])
def test_default_tile_size_follows_the_runtime(configured, core):
    from astro_deepcr import conf
    from astro_deepcr.engine import DEFAULT_TILE_SIZE, halo_for

    assert DEFAULT_TILE_SIZE == {"torch": 512, "openvino": 1024}
    runtime = _CountingRuntime()
    with conf.set_temp("tile_size", configured):
        run_tiled(runtime, np.zeros((1, 2100, 2100), np.float32), device="cpu", progress=False)
    # every tile's input is at most its core plus a halo on both sides, and the largest is exactly that
    assert max(max(shape) for shape in runtime.shapes) == core + 2 * halo_for(2)
    assert len(runtime.shapes) == math.ceil(2100 / core) ** 2


def test_default_tile_size_on_torch(mask_fast):
    from astro_deepcr import conf

    shapes = []
    hook = mask_fast.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape[2:])))
    try:
        with conf.set_temp("tile_size", 0):
            run_tiled(mask_fast, np.zeros((1, 600, 600), np.float32), device="cpu", progress=False)
    finally:
        hook.remove()
    # 600 px: two tiles a side, each with a halo on its inner side only
    assert len(shapes) == 4 and max(max(shape) for shape in shapes) == 512 + halo_for(mask_fast.depth)
