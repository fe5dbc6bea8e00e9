#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``astro-deepcr adapt --faint-stars`` on a sharp, bright-sky night: does adapting to it stop the masking of faint stars?

The faint-star grid (``faint_star_grid.py``) finds ``ground-v2`` flagging a tenth of the faint point sources at
1.8 px FWHM on a 3000 e- sky. Here a user's night is two simulated star fields of that cell (``star_field``,
seeds 101 and 102, no cosmic rays of their own), and `astro_deepcr.adapt.adapt_model` adapts ``ground-v2`` to
them with its defaults, once without and once with ``faint_stars``. Each written model is then scored as the
grid scores a model, on a fresh field and fresh injections (``--seed``, default 23) of the same cell, with the
``kpno`` and ``wfpc2`` libraries (which the adaptation never injects) and their placebos, and paired against
``ground-v2`` on the same frames::

    python benchmarks/adapt_faint_stars.py OUTPUT [--fwhm 1.8] [--sky 3000] [--faint-stars 1e-3] [--seed 23]

``OUTPUT/plain/ground-v2-plain.*`` and ``OUTPUT/faint-stars/ground-v2-faint-stars.*`` receive what ``adapt``
writes (nothing where it refuses).
"""

import argparse
import os
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

TRAINING_SEEDS = (101, 102)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--fwhm", type=float, default=1.8)
    parser.add_argument("--sky", type=float, default=3000.0)
    parser.add_argument("--faint-stars", type=float, default=1e-3, metavar="PER_PX")
    parser.add_argument("--seed", type=int, default=23, help="seed of the scoring field and its injections")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from faint_star_grid import READNOISE, cell, paired_lines, star_field
    from injection_frames import available_libraries, register_libraries

    from astro_deepcr.adapt import AdaptationRefused, AdaptFrame, adapt_model

    start = time.perf_counter()
    register_libraries()
    libraries = available_libraries(["kpno", "wfpc2"])
    frames = [AdaptFrame(f"fwhm {args.fwhm:g} sky {args.sky:g} seed {seed}",
                         star_field(args.fwhm, args.sky, seed)["electrons"], READNOISE) for seed in TRAINING_SEEDS]
    grid_args = types.SimpleNamespace(seed=args.seed, trials=args.trials, model=None)
    references = [cell(args.fwhm, args.sky, library, grid_args, model="ground-v2") for library in libraries]
    for label, density in (("plain", 0.0), ("faint-stars", args.faint_stars)):
        try:
            path, table = adapt_model(frames, os.path.join(args.output, label), model="ground-v2",
                                      name=f"ground-v2-{label}", threads=args.threads, faint_stars=density,
                                      overwrite=True, progress=False)
        except AdaptationRefused as exc:
            print(f"## {label}: refused\n{exc}\n")
            continue
        pairs = [cell(args.fwhm, args.sky, library, grid_args, model=path) for library in libraries]
        print(f"## {label} (faint_stars {density:g}): {path}\n")
        print("\n".join(table))
        print(f"\nScored on a fresh field (seed {args.seed}), paired against ground-v2 (cosmic rays recalled / "
              f"placebos flagged; the placebo test's p is that the adapted model flags more):\n")
        print("\n".join(paired_lines(pairs, references)))
        print(f"\n({time.perf_counter() - start:.0f} s)\n", flush=True)


if __name__ == "__main__":
    main()
