# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``astro-deepcr adapt`` on the real frames of the evaluation, one frame at a time.

    python benchmarks/adapt_frames.py OUTPUT [--frames hrc wfpc2-wf4 saao] [--steps 400] [--threads 2]
        [--release-stars] [--together] [--faint-stars PER_PX]

Each frame is loaded as `injection_frames.py` loads it (electrons, DQ, saturation), given to
`astro_deepcr.adapt.adapt_model` with the command's defaults (base model from the header, 400 steps on the
first 70 % of the frame, the check on the rest with the ``wfpc2`` library), and the before/after table is
printed with the time taken and the share of the frame kept out of the loss as its own cosmic-ray
candidates. ``OUTPUT/<frame>/`` receives what the command writes (nothing where it refuses). Frames whose
loader needs a package that is not installed are skipped. ``wfpc2-*`` frames are the same WFPC2 file as the
``wfpc2`` check library: for them the check is the frame's own cosmic rays at new places. ``--together``: one
adaptation on all the frames at once (as ``astro-deepcr adapt FRAME FRAME ...``; base model from the first),
written to ``OUTPUT/together/``.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--frames", nargs="+", default=["hrc", "wfpc2-wf4", "saao"])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--release-stars", action="store_true", help="as astro-deepcr adapt --release-stars")
    parser.add_argument("--together", action="store_true", help="one adaptation on all the frames")
    parser.add_argument("--faint-stars", type=float, default=0.0, metavar="PER_PX",
                        help="as astro-deepcr adapt --faint-stars")
    args = parser.parse_args(argv)

    from injection_frames import LOADERS

    from astro_deepcr.adapt import AdaptationRefused, adapt_model, own_candidates
    from astro_deepcr.adapt_cli import adapt_frame
    from astro_deepcr.detection import choose_model

    frames = {}
    for name in args.frames:
        try:
            frames[name] = adapt_frame(LOADERS[name]())
        except (ImportError, FileNotFoundError, OSError) as exc:
            print(f"## {name}: skipped ({exc})")
            continue
        spec, _ = choose_model(frames[name].header)
        candidates = own_candidates(frames[name], spec, threads=args.threads, release_stars=args.release_stars)
        print(f"## {name}: base {spec.name}, {candidates.mean():.1%} of the frame kept out of the loss")
    runs = {"together": list(frames.values())} if args.together else {name: [frame] for name, frame in frames.items()}
    for name, run_frames in runs.items():
        start = time.monotonic()
        try:
            path, table = adapt_model(run_frames, os.path.join(args.output, name), steps=args.steps, seed=args.seed,
                                      threads=args.threads, release_stars=args.release_stars,
                                      faint_stars=args.faint_stars, overwrite=True, progress=False)
            verdict = f"wrote {path}"
        except AdaptationRefused as exc:
            table, verdict = str(exc).splitlines()[1:], "refused"
        print(f"## {name}")
        print("\n".join(table))
        print(f"{verdict} ({time.monotonic() - start:.0f} s)\n", flush=True)


if __name__ == "__main__":
    main()
