#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""GPU figures for docs/gpu.rst: best of 3 timed DeepCR.mask calls (after one warm-up) and peak GPU memory,
ACS-WFC and ground, float32 and bfloat16, 2048^2 and 4096^2 px::

    python benchmarks/bench_gpu.py          # needs a CUDA device; writes $OUT/gpu_bench.json (default /tmp)
"""

import json
import os
import time

import numpy as np
import torch

from astro_deepcr import DeepCR


def main():
    rng = np.random.default_rng(0)
    out = {}
    print(torch.cuda.get_device_name(0), torch.__version__)
    for shape in ((2048, 2048), (4096, 4096)):
        image = rng.normal(100, 10, shape).astype(np.float32)
        image[rng.integers(0, shape[0], 2000), rng.integers(0, shape[1], 2000)] += 3000
        for model in ("ACS-WFC", "ground"):
            for precision in ("float32", "bfloat16"):
                deepcr = DeepCR(mask=model, device="cuda", precision=precision)
                deepcr.mask(image)  # warm-up
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    found = deepcr.mask(image)
                    torch.cuda.synchronize()
                    times.append(time.perf_counter() - start)
                peak = torch.cuda.max_memory_allocated() / 2**20
                key = f"{shape[0]}x{shape[1]} {model} {precision}"
                flagged = int(np.asarray(found).sum())
                out[key] = (min(times), peak, flagged)
                print(f"| {key} | {min(times):.3f} s | {shape[0] * shape[1] / 1e6 / min(times):.1f} Mpx/s | "
                      f"{peak:.0f} MiB | {flagged} px |", flush=True)
    with open(os.path.join(os.environ.get("OUT", "/tmp"), "gpu_bench.json"), "w") as stream:
        json.dump(out, stream, indent=1)


if __name__ == "__main__":
    main()
