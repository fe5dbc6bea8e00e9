#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Runtime of `astro_deepcr.drizzle.flag_cosmic_rays` on one full-size ACS/WFC
``_flc`` file (2 chips of 2048 x 4096, synthetic, electrons) against
astroscrappy (LACosmic, ``niter=4``) on the same file, in one run.

Each method runs in its own fresh process, rounds interleaved so that a change
of load on a shared machine hits all alike; best round of each. deepCR: the
whole flag step (reading the file, deepCR-mask on both chips, writing the DQ
update atomically) at the default ``precision="auto"`` and at ``"float32"``
on the default backend (OpenVINO where installed), and at float32 on torch.
Two timings per process: ``cold`` is the first call (model load, OpenVINO
conversion and compilation included: what one file in a fresh process costs),
``warm`` the second (what every further file of a batch costs). astroscrappy:
reading both SCI chips and ``detect_cosmics`` on each (gain 1, read noise
4 e-, sigclip 4.5, objlim 5, niter 4), no file write, so the comparison
favours astroscrappy slightly. The file is generated first (not timed)::

    python benchmarks/bench_drizzle_flag.py [--repeat 2] [--threads N] [--json out.json]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

METHODS = ("auto", "float32", "torch-float32", "astroscrappy")


def _flag(path, device, method):
    from astro_deepcr import conf
    from astro_deepcr.drizzle import flag_cosmic_rays

    backend, _, precision = method.rpartition("-")
    with conf.set_temp("precision", precision), conf.set_temp("backend", backend or "auto"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = flag_cosmic_rays(path, device=device, progress=False)
    return [int(n) for n in summary["n_cr"]]


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


def worker(method, path, device, threads):
    """One fresh process: two calls, timed separately (cold, warm)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    run = (lambda: _lacosmic(path)) if method == "astroscrappy" else (lambda: _flag(path, device, method))
    times = []
    for _ in range(2):
        start = time.perf_counter()
        counts = run()
        times.append(time.perf_counter() - start)
    row = {"method": method, "cold": times[0], "warm": times[1], "cr_pixels_per_chip": counts}
    if method != "astroscrappy":
        from astro_deepcr import DeepCR, conf, engine, zoo

        backend, _, precision = method.rpartition("-")
        with conf.set_temp("backend", backend or "auto"):
            used = DeepCR(device=device, precision=precision).precision_used
            net = zoo.load_network("ACS-WFC", device=device, precision=used)
        row.update(precision_used=used, backend=engine.backend_label(net))
    print(json.dumps(row))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="rounds (each method once per round)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: the runtime's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", type=int, nargs=2, default=(2048, 4096), help="chip shape (ny nx)")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker, args.device, args.threads)
        return 0
    import torch

    from astro_deepcr.training.flc import write_flc_stack

    load_before = os.getloadavg()[0]
    results = {"chip_shape": list(args.shape), "device": args.device,
               "cpu": f"{platform.machine()}, {os.cpu_count()} cores, torch CPU capability "
                      f"{torch.backends.cpu.get_cpu_capability()}", "methods": {}}
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        stack = write_flc_stack(workdir, n_exposures=1, chip_shape=tuple(args.shape), seed=1)
        path = stack.files[0]
        print(f"generated {os.path.basename(path)} (2 x {args.shape[0]}x{args.shape[1]}) "
              f"in {time.perf_counter() - start:.1f} s")
        for _ in range(args.repeat):
            for method in args.methods:
                command = [sys.executable, __file__, "--worker", method, path, "--device", args.device,
                           "--threads", str(args.threads)]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                row = json.loads(done.stdout.strip().splitlines()[-1])
                previous = results["methods"].setdefault(method, {**row, "cold_all": [], "warm_all": []})
                previous["cold_all"].append(row["cold"])
                previous["warm_all"].append(row["warm"])
    results["load_average_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    lacosmic = results["methods"].get("astroscrappy")
    print(f"full flc, 2 x {args.shape[0]}x{args.shape[1]}, device {args.device}, {results['cpu']}; load average "
          f"(1 min) before/after {results['load_average_before_after']}")
    print(f"{'method':<15} {'backend':<17} {'precision':<9} {'cold s':>7} {'warm s':>7} {'warm/LACosmic':>13}  "
          "CR pixels per chip")
    for method, row in results["methods"].items():
        row["cold"], row["warm"] = min(row["cold_all"]), min(row["warm_all"])
        # astroscrappy has nothing to warm up: its best call of all is its time
        best = min(row["cold"], row["warm"]) if method == "astroscrappy" else row["warm"]
        row["fraction_of_astroscrappy_time"] = best / min(lacosmic["cold"], lacosmic["warm"]) if lacosmic else None
        fraction = row["fraction_of_astroscrappy_time"]
        print(f"{method:<15} {row.get('backend', 'n/a'):<17} {row.get('precision_used', 'n/a'):<9} "
              f"{row['cold']:7.2f} {row['warm']:7.2f} {'' if fraction is None else f'{fraction:13.1%}'}  "
              f"{row['cr_pixels_per_chip']}")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(results, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
