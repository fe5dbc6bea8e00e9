#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Peak memory of one DeepCR call on a real-sized workload, in a fresh process
(the habit of ccdproc's run_for_memory_profile.py)::

    python benchmarks/memory_profile.py --shape 4096 4096 --tile 512

Prints a JSON line: peak RSS after start-up (imports, model loaded) and after
the call, in MiB, and the image size in MiB.
"""

import argparse
import json
import sys

import numpy as np


def peak_mib():
    from astro_deepcr.bench import peak_rss_mib  # this process's own peak (ru_maxrss survives exec)

    return peak_rss_mib()


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", type=int, nargs=2, default=(4096, 4096))
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--model", default="ACS-WFC")
    parser.add_argument("--method", choices=["mask", "clean"], default="mask")
    parser.add_argument("--precision", default="auto", help="DeepCR precision (default: auto, the default)")
    args = parser.parse_args(argv)

    from astro_deepcr import DeepCR

    model = DeepCR(args.model, device="cpu", tile_size=args.tile, precision=args.precision, progress=False)
    model.mask(np.zeros((8, 8), np.float32))  # load the network, warm the allocator
    image = np.random.default_rng(0).normal(60, 8, args.shape).astype(np.float32)
    image[:: 97, :: 89] += 3000.0
    before = peak_mib()
    result = getattr(model, args.method)(image)
    print(json.dumps({"shape": list(args.shape), "tile": args.tile, "method": args.method,
                      "precision": model.precision_used,
                      "image_mib": image.nbytes / 2**20, "startup_peak_mib": before, "peak_mib": peak_mib(),
                      "cr_pixels": int(np.sum(result[0] if args.method == "clean" else result))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
