# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
One training step of a deepCR-mask network, channels-last against the default layout, in one run::

    python benchmarks/bench_train_step.py [--depth 2 --width 4 --batch 16 --size 256 --threads 2]

Prints milliseconds per step (forward, BCE loss, backward, Adam) for each
layout, twice, and the ratio. The trainer keeps tensors channels-last.
"""

import argparse
import time

import torch
import torch.nn.functional as F

from astro_deepcr.nets import UNet


def step_ms(layout, args, steps=10, warmup=3):
    torch.manual_seed(0)
    images = torch.randn(args.batch, 1, args.size, args.size).contiguous(memory_format=layout)
    labels = (torch.rand(args.batch, 1, args.size, args.size) > 0.99).float()
    net = UNet(1, args.depth, args.width).to(memory_format=layout)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.005)
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.binary_cross_entropy(net(images), labels).backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps * 1000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    times = {"default": [], "channels_last": []}
    for _ in range(2):
        times["default"].append(step_ms(torch.contiguous_format, args))
        times["channels_last"].append(step_ms(torch.channels_last, args))
    for name, values in times.items():
        print(f"{name:14s} " + "  ".join(f"{v:.0f} ms/step" for v in values))
    print(f"channels-last is {min(times['default']) / min(times['channels_last']):.2f}x faster (best of 2)")


if __name__ == "__main__":
    main()
