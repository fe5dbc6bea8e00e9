# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Runtime of `astro_deepcr.drizzle.flag_cosmic_rays` on one full-size ACS/WFC
``_flc`` file (2 chips of 2048 x 4096, synthetic, electrons).

Times the whole flag step: reading the file, deepCR-mask on both chips,
writing the DQ update atomically. The file is generated first (not timed).
Run it on a quiet machine::

    python benchmarks/bench_drizzle_flag.py [--repeat 2] [--threads N] [--device cpu]
"""

import argparse
import os
import platform
import tempfile
import time
import warnings

import torch

from astro_deepcr.drizzle import flag_cosmic_rays
from astro_deepcr.training.flc import write_flc_stack


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", type=int, nargs=2, default=(2048, 4096), help="chip shape (ny nx)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        stack = write_flc_stack(workdir, n_exposures=1, chip_shape=tuple(args.shape), seed=1)
        print(f"generated {os.path.basename(stack.files[0])} (2 x {args.shape[0]}x{args.shape[1]}) "
              f"in {time.perf_counter() - start:.1f} s")
        flag_cosmic_rays(stack.files[0], device=args.device)  # warm-up: model load, allocator
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                summary = flag_cosmic_rays(stack.files[0], device=args.device)
            times.append(time.perf_counter() - start)
    print(f"flag_cosmic_rays, 2 x {args.shape[0]}x{args.shape[1]} flc, device {args.device}, "
          f"torch threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores")
    print(f"  CR pixels per chip: {[int(n) for n in summary['n_cr']]}")
    print(f"  wall time per file: best {min(times):.1f} s, all {[round(t, 1) for t in times]}")


if __name__ == "__main__":
    main()
