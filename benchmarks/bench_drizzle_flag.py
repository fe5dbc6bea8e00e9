#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Runtime of `astro_deepcr.drizzle.flag_cosmic_rays` on one full-size ACS/WFC
``_flc`` file (2 chips of 2048 x 4096, synthetic, electrons) against
astroscrappy (LACosmic, ``niter=4``) on the same file, in one run.

deepCR: the whole flag step (reading the file, deepCR-mask on both chips,
writing the DQ update atomically), at the default ``precision="auto"`` and at
``"float32"``, each after one untimed warm-up call (weights loaded once per
process). astroscrappy: reading both SCI chips and ``detect_cosmics`` on each
(gain 1, read noise 4 e-, sigclip 4.5, objlim 5, niter 4), no file write, so
the comparison favours astroscrappy slightly. The file is generated first (not
timed). Run it on a quiet machine::

    python benchmarks/bench_drizzle_flag.py [--repeat 2] [--threads N] [--json out.json]
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings

import numpy as np
import torch


def _flag(path, device, precision):
    from astro_deepcr import conf
    from astro_deepcr.drizzle import flag_cosmic_rays

    with conf.set_temp("precision", precision), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return flag_cosmic_rays(path, device=device, progress=False)


def _lacosmic(path):
    import astroscrappy
    from astropy.io import fits

    counts = []
    with fits.open(path) as hdul:
        for extver in (1, 2):
            image = np.asarray(hdul["SCI", extver].data, np.float32)
            mask, _ = astroscrappy.detect_cosmics(image, sigclip=4.5, objlim=5.0, gain=1.0, readnoise=4.0,
                                                  satlevel=np.inf, niter=4, verbose=False)
            counts.append(int(mask.sum()))
    return counts


def _timed(function, repeat):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), times, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", type=int, nargs=2, default=(2048, 4096), help="chip shape (ny nx)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from astro_deepcr import DeepCR
    from astro_deepcr.training.flc import write_flc_stack

    results = {"chip_shape": list(args.shape), "device": args.device, "threads": torch.get_num_threads(),
               "cpu": f"{platform.machine()}, {os.cpu_count()} cores, torch CPU capability "
                      f"{torch.backends.cpu.get_cpu_capability()}"}
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        stack = write_flc_stack(workdir, n_exposures=1, chip_shape=tuple(args.shape), seed=1)
        path = stack.files[0]
        print(f"generated {os.path.basename(path)} (2 x {args.shape[0]}x{args.shape[1]}) "
              f"in {time.perf_counter() - start:.1f} s")
        for precision in ("auto", "float32"):
            _flag(path, args.device, precision)  # warm-up: model load, allocator
            best, times, summary = _timed(lambda precision=precision: _flag(path, args.device, precision),
                                          args.repeat)
            results[f"deepcr_{precision}"] = {
                "seconds": best, "all_seconds": times, "cr_pixels_per_chip": [int(n) for n in summary["n_cr"]],
                "precision_used": DeepCR(device=args.device, precision=precision).precision_used}
        best, times, counts = _timed(lambda: _lacosmic(path), args.repeat)
        results["astroscrappy"] = {"seconds": best, "all_seconds": times, "cr_pixels_per_chip": counts}
    lacosmic = results["astroscrappy"]["seconds"]
    print(f"full flc, 2 x {args.shape[0]}x{args.shape[1]}, device {args.device}, torch threads "
          f"{results['threads']}, {results['cpu']}")
    print(f"{'method':<30} {'seconds':>8} {'of LACosmic':>8}  CR pixels per chip")
    for key, label in (("deepcr_auto", "deepCR flag, auto"), ("deepcr_float32", "deepCR flag, float32"),
                       ("astroscrappy", "astroscrappy niter 4")):
        row = results[key]
        row["fraction_of_astroscrappy_time"] = row["seconds"] / lacosmic
        label += f" ({row['precision_used']})" if "precision_used" in row else ""
        print(f"{label:<30} {row['seconds']:8.2f} {row['fraction_of_astroscrappy_time']:8.1%}  "
              f"{row['cr_pixels_per_chip']}")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(results, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
