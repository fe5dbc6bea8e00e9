#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
CPU benchmark: a full 2048x4096 float32 ACS/WFC chip through the reference
deepCR 0.3.1 (``clean(segment=True, patch=1024)``) and through astro_deepcr,
same model and threshold, in one run.

Each method runs in its own subprocess so that its peak RSS is its own. The
image is a simulated ACS/WFC-like chip in electrons (sky 60 e-, read noise
4 e-, 500 s, stars, galaxies and cosmic rays; fixed seed). Reports wall time
(best of ``--repeat``), the speed ratio, peak RSS and the fraction of
identical mask pixels::

    python benchmarks/bench_cpu.py                 # defaults: ACS-WFC, threshold 0.5
    python benchmarks/bench_cpu.py --repeat 3 --tile 512 --json result.json
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

SHAPE = (2048, 4096)


def make_chip(path, seed=2024):
    from astro_deepcr.training.simulate import simulate_exposure

    chip = simulate_exposure(SHAPE, "extragalactic", exptime=500.0, sky=60.0, read_noise=4.0, seed=seed)
    np.save(path, chip["image"])


def worker(method, image_path, mask_path, model, threshold, tile, repeat, threads):
    import torch

    if threads:
        torch.set_num_threads(threads)
    image = np.load(image_path)
    times = []
    for _ in range(repeat):
        if method == "reference":
            import deepCR

            start = time.perf_counter()
            engine = deepCR.deepCR(mask=model, device="CPU")
            mask = engine.clean(image, threshold=threshold, inpaint=False, segment=True, patch=1024) > 0.5
        else:
            from astro_deepcr import DeepCR

            start = time.perf_counter()
            engine = DeepCR(model, device="cpu", tile_size=tile, progress=False)
            mask = engine.mask(image, threshold=threshold)
        times.append(time.perf_counter() - start)
    np.save(mask_path, mask)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MiB on Linux
    print(json.dumps({"method": method, "seconds": min(times), "all_seconds": times, "peak_rss_mib": peak,
                      "threads": torch.get_num_threads()}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ACS-WFC")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--tile", type=int, default=None, help="astro_deepcr tile size (default: conf)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", nargs=3, metavar=("METHOD", "IMAGE", "MASK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker, args.model, args.threshold, args.tile, args.repeat, args.threads)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        image_path = os.path.join(tmp, "chip.npy")
        make_chip(image_path)
        results = {}
        for method in ("reference", "astro_deepcr"):
            mask_path = os.path.join(tmp, f"{method}.npy")
            command = [sys.executable, __file__, "--worker", method, image_path, mask_path, "--model", args.model,
                       "--threshold", str(args.threshold), "--repeat", str(args.repeat), "--threads",
                       str(args.threads)] + (["--tile", str(args.tile)] if args.tile else [])
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            results[method] = json.loads(done.stdout.strip().splitlines()[-1])
            results[method]["mask"] = np.load(mask_path)
    ref, ours = results["reference"], results["astro_deepcr"]
    agreement = float((ref["mask"] == ours["mask"]).mean())
    summary = {
        "shape": list(SHAPE),
        "model": args.model,
        "threshold": args.threshold,
        "reference_seconds": ref["seconds"],
        "astro_deepcr_seconds": ours["seconds"],
        "speedup": ref["seconds"] / ours["seconds"],
        "reference_peak_rss_mib": ref["peak_rss_mib"],
        "astro_deepcr_peak_rss_mib": ours["peak_rss_mib"],
        "rss_ratio": ours["peak_rss_mib"] / ref["peak_rss_mib"],
        "identical_mask_fraction": agreement,
        "differing_pixels": int((ref["mask"] != ours["mask"]).sum()),
        "cr_pixels_reference": int(ref["mask"].sum()),
        "cr_pixels_astro_deepcr": int(ours["mask"].sum()),
        "threads": ours["threads"],
    }
    for key, value in summary.items():
        print(f"{key:28s} {value:.6g}" if isinstance(value, float) else f"{key:28s} {value}")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(summary, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
