# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astro-deepcr bench`` and ``astro-deepcr demo``: trying deepCR on this machine."""

from .options import UsageError, check_model_and_device, common, error, info, positive_int, probability

__all__ = ["add_subparser"]


def _cmd_bench(args):
    from ..bench import benchmark

    check_model_and_device(args.model, args.device)
    timing = benchmark(shape=tuple(args.shape), model=args.model, device=args.device, tile_size=args.tile,
                       threads=args.threads, repeat=args.repeat)
    print(f"model {timing['model']} on {timing['device']}, image {args.shape[0]}x{args.shape[1]}: "
          f"{timing['seconds']:.3f} s (best of {args.repeat}), {timing['megapixels_per_s']:.2f} Mpix/s, "
          f"peak RSS {timing['peak_rss_mib']:.0f} MiB"
          + (f", peak GPU memory {timing['peak_gpu_mib']:.0f} MiB" if timing.get("peak_gpu_mib") else ""))
    return 0


def _cmd_demo(args):
    if args.simulated and args.star_shape:
        raise UsageError("--star-shape runs on the real exposure; the simulated one has no stars to learn from")
    if args.simulated:
        run_simulated = getattr(args, "simulated_demo", None)
        if run_simulated is None:
            raise UsageError("--simulated needs the plug-in astro_deepcr.evaluation.simulated_demo, which could not be "
                             "loaded (is astro_deepcr.training importable?)")
        check_model_and_device(args.model or "ACS-WFC", args.device)
        summary = run_simulated(args)
        info(args, f"simulated {args.shape[0]}x{args.shape[1]} {args.field} exposure (seed {args.seed}): "
                   f"{summary['n_true']} cosmic-ray pixels")
        info(args, f"{summary['model']} at threshold {summary['threshold']:g}: {summary['n_detected']} pixels "
                   f"flagged, TPR {summary['tpr']:.3f}, FPR {summary['fpr']:.5f}")
        info(args, f"wrote {summary['fits']} and {summary['png']}")
        return 0
    from ..demo import run_demo, summary_lines

    if args.model is not None:
        check_model_and_device(args.model, args.device)
    try:
        summary = run_demo(args.outdir, model=args.model, threshold=args.threshold, device=args.device,
                           star_shape=args.star_shape)
    except (FileNotFoundError, ValueError) as exc:
        error(exc)
        return 1
    for line in summary_lines(summary):
        info(args, line)
    info(args, f"wrote {', '.join(filter(None, (summary['fits'], summary['png'], summary['regions'])))}")
    return 0


def _add_bench(subparsers):
    parser = subparsers.add_parser("bench", parents=[common()], help="time deepCR on a generated image")
    parser.add_argument("--shape", type=positive_int, nargs=2, default=(1024, 1024), metavar=("NY", "NX"),
                        help="image shape (default 1024 1024)")
    parser.add_argument("--model", default="ACS-WFC", help="deepCR-mask model (default ACS-WFC)")
    parser.add_argument("--device", help="torch device (default: conf.device)")
    parser.add_argument("--tile", type=positive_int,
                        help="tile size (default: conf.tile_size; 0 there: 1024 on OpenVINO, 512 on torch)")
    parser.add_argument("--threads", type=positive_int, help="CPU threads")
    parser.add_argument("--repeat", type=positive_int, default=3, help="timed runs; the best is shown (3)")
    parser.set_defaults(func=_cmd_bench)


def _add_demo(subparsers):
    parser = subparsers.add_parser(
        "demo", parents=[common()],
        help="deepCR on a real HST exposure: numbers, FITS, quick-look PNG, DS9 regions",
        description="Run deepCR on the ACS/HRC exposure of 47 Tuc that spherical_geometry ships "
                    "(j8bt06nyq_flt.fits; model from its header, DQ respected), print the counts and write "
                    "demo.fits, demo.png and demo.reg to OUTDIR. --simulated: a simulated exposure with known "
                    "cosmic rays instead, with true- and false-positive rates.")
    parser.add_argument("-o", "--outdir", default="demo_out", help="output folder (default demo_out)")
    parser.add_argument("--model", help="deepCR-mask model (default: from the header; ACS-WFC when simulated)")
    parser.add_argument("--threshold", type=probability, help="probability threshold (default: the model's)")
    parser.add_argument("--device", help="torch device (default: conf.device)")
    parser.add_argument("--star-shape", action="store_true",
                        help="also the star-shape test for cosmic rays on stars (the header's read noise; off by "
                             "default, docs: ground.rst)")
    parser.add_argument("--simulated", action="store_true",
                        help="simulated exposure with known cosmic rays (options below; needs the training "
                             "plug-in)")
    parser.set_defaults(func=_cmd_demo)


def add_subparser(subparsers):
    """Register ``bench`` and ``demo``."""
    _add_bench(subparsers)
    _add_demo(subparsers)
