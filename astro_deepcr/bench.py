# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``astro-deepcr bench``: a quick timing of `~astro_deepcr.DeepCR.mask` on this machine.

The image is the real ACS/HRC example exposure of `astro_deepcr.datasets`
(1024 x 1024), repeated or cropped to the requested shape: the network's
cost does not depend on the pixel values, and a production module must not
import the simulator of `astro_deepcr.training`. The reference benchmarks
(against deepCR 0.3.1, memory, drizzle flagging) are the scripts in the
repository's ``benchmarks/`` folder.
"""

import sys
import time

import numpy as np

__all__ = ["benchmark", "benchmark_image", "peak_rss_mib"]


def benchmark_image(shape=(1024, 1024)):
    """The example exposure (electrons, float32) tiled or cropped to ``shape``."""
    from .datasets import load_hst_example

    ny, nx = (int(n) for n in shape)
    if ny < 1 or nx < 1:
        raise ValueError(f"shape must be two positive integers, not {shape!r}")
    science = load_hst_example().science
    reps = (-(-ny // science.shape[0]), -(-nx // science.shape[1]))
    return np.ascontiguousarray(np.tile(science, reps)[:ny, :nx])


def peak_rss_mib():
    """This process's peak resident memory in MiB (NaN where it cannot be read).

    On Linux the high-water mark of the process's own memory (``VmHWM``):
    ``getrusage``'s ``ru_maxrss`` survives ``exec``, so a subprocess started by
    a large process (a test run) would report its parent's size instead.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # not on Windows
        return float("nan")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)


def benchmark(shape=(1024, 1024), model="ACS-WFC", device=None, tile_size=None, threads=None, repeat=3):
    """Time `~astro_deepcr.DeepCR.mask` on `benchmark_image` of ``shape``.

    Returns
    -------
    timing : dict
        ``model``, ``device``, ``seconds`` (best of ``repeat`` runs after a
        warm-up), ``megapixels_per_s``, ``peak_rss_mib`` (the process's peak
        resident memory) and, on CUDA, ``peak_gpu_mib``.
    """
    import torch

    from .deepcr import DeepCR

    image = benchmark_image(shape)
    deepcr = DeepCR(mask=model, device=device, tile_size=tile_size, threads=threads, progress=False)
    deepcr.mask(image[:64, :64])  # warm-up: load the network, first-call allocations
    timings = []
    for _ in range(max(1, int(repeat))):
        if deepcr.device.type == "cuda":
            torch.cuda.synchronize(deepcr.device)
        start = time.perf_counter()
        deepcr.mask(image)
        if deepcr.device.type == "cuda":
            torch.cuda.synchronize(deepcr.device)
        timings.append(time.perf_counter() - start)
    seconds = min(timings)
    timing = {"model": deepcr.mask_spec.name, "device": str(deepcr.device), "seconds": seconds,
              "megapixels_per_s": image.size / 1e6 / seconds, "peak_rss_mib": peak_rss_mib()}
    if deepcr.device.type == "cuda":
        timing["peak_gpu_mib"] = torch.cuda.max_memory_allocated(deepcr.device) / 2**20
    return timing
