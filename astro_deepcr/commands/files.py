# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astro-deepcr clean`` and ``astro-deepcr flag``: FITS files in batches, thin over `astro_deepcr.batch`."""

import argparse

from ..dq import CR_BIT, DEFAULT_BITS, DEFAULT_FILL_BITS
from .options import (
    UsageError,
    common,
    look_options,
    model_options,
    none_bits,
    parallel_options,
    positive_int,
    report,
    run_parallel,
)

__all__ = ["add_subparser"]


def _cmd_clean(args):
    from .. import batch

    def run(client):
        return batch.clean_files(
            args.files, args.outdir, model=args.model, threshold=args.threshold, inpaint=args.inpaint,
            ext=args.ext or (), device=args.device, precision=args.precision, tile_size=args.tile,
            write_probability=args.probability,
            overwrite=args.overwrite, gain=args.gain, threads=args.threads, jobs=args.jobs, client=client,
            progress=not args.quiet, bits=none_bits(args.bits), fill_bits=none_bits(args.fill_bits),
            crbit=args.crbit, use_dq=not args.no_dq, plot=args.plot, regions=args.regions,
            star_shape=args.star_shape)

    try:
        results = run_parallel(args, run)
    except (ValueError, TypeError) as exc:
        raise UsageError(exc) from None
    return report(args, results, "cleaned")


def _expand(patterns):
    """drizzlepac-style inputs (wildcards, ``@lists``, association tables) per argument.

    Returns ``(names, failures)``: an argument matching nothing is a failure,
    not a reason to stop.
    """
    from ..batch import FileResult
    from ..drizzle import parse_inputs

    names, failures = [], []
    for pattern in patterns:
        try:
            names.extend(parse_inputs(pattern))
        except ValueError as exc:
            failures.append(FileResult(pattern, False, str(exc)))
    return names, failures


def _cmd_flag(args):
    from .. import batch
    from ..zoo import get_model

    if args.model is not None:
        try:
            get_model(args.model, kind="mask")
        except ValueError as exc:
            raise UsageError(exc) from None
    names, failures = _expand(args.files)
    options = dict(model=args.model, threshold=args.threshold, crbit=args.crbit, grow=args.grow,
                   device=args.device, precision=args.precision, lock_timeout=args.lock_timeout)
    if args.star_shape:
        options["star_shape"] = True
    if args.no_reset and args.resetbits is not None:
        raise UsageError("give --resetbits or --no-reset, not both")
    if args.no_reset or args.resetbits is not None:
        options["resetbits"] = 0 if args.no_reset else args.resetbits
    if args.bits is not None and args.bad_bits is not None:
        raise UsageError("give --bits (good DQ bits) or the deprecated --bad-bits, not both")
    for key in ("bits", "bad_bits", "fill_bits"):
        if getattr(args, key) is not None:
            options[key] = None if getattr(args, key).strip().lower() == "none" else getattr(args, key)

    def run(client):
        return batch.flag_files(names, jobs=args.jobs, client=client, progress=not args.quiet, plot=args.plot,
                                regions=args.regions, **options)

    try:
        results = run_parallel(args, run) if names else []
    except (ValueError, TypeError) as exc:
        raise UsageError(exc) from None
    return report(args, failures + results, "flagged")


def _add_clean(subparsers):
    parser = subparsers.add_parser(
        "clean", parents=[common()], help="clean cosmic rays in FITS files into an output folder",
        description="Detect and replace cosmic rays in every 2-D image extension; write the cleaned file, "
                    "with a CRMASK extension per image, to OUTDIR.")
    parser.add_argument("files", nargs="+", metavar="IN.fits", help="input FITS files")
    parser.add_argument("-o", "--outdir", required=True, help="output folder (created if needed)")
    parser.add_argument("--ext", action="append", metavar="EXT",
                        help="only this extension: NAME (e.g. SCI), NAME,VER or an index; repeatable")
    model_options(parser)
    parser.add_argument("--inpaint", default="medmask",
                        help="medmask (default), biharmonic, a deepCR-inpaint model, or none (masks only)")
    parser.add_argument("--tile", type=positive_int,
                        help="tile size in pixels (default: conf.tile_size; 0 there: 1024 on OpenVINO, 512 on torch)")
    parser.add_argument("--threads", type=positive_int, help="CPU threads per process")
    parser.add_argument("--gain", type=float, help="electrons per data unit, for data in ADU or without BUNIT")
    parser.add_argument("--probability", action="store_true", help="also write CRPROB probability extensions")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    dq = parser.add_argument_group("HST DQ arrays (SCI,N with DQ,N)")
    dq.add_argument("--bits", default=DEFAULT_BITS,
                    help=f"good DQ bits, drizzlepac's sense (default '{DEFAULT_BITS}'; 'none': every pixel); "
                         "pixels with other bits (saturated, hot, bad...) are never flagged nor replaced")
    dq.add_argument("--fill-bits", default=DEFAULT_FILL_BITS,
                    help=f"DQ bits filled before detection (default '{DEFAULT_FILL_BITS}')")
    dq.add_argument("--crbit", type=int, default=CR_BIT,
                    help=f"DQ bit set on the cosmic rays found (default {CR_BIT})")
    dq.add_argument("--no-dq", action="store_true", help="ignore DQ arrays")
    parser.add_argument("--star-shape", action="store_true",
                        help="also flag what the isolated stars' shape cannot explain: cosmic rays on the stars of "
                             "crowded, undersampled frames (astro_deepcr.starshape; read noise from the header)")
    look_options(parser)
    parallel_options(parser)
    parser.set_defaults(func=_cmd_clean)


def _add_flag(subparsers):
    parser = subparsers.add_parser(
        "flag", parents=[common()], help="flag cosmic rays in the DQ arrays of HST _flt/_flc files (in place)",
        description="OR the cosmic-ray bit into DQ,N where deepCR finds cosmic rays in SCI,N; each file is "
                    "rewritten atomically. Then drizzle with resetbits=0, median/blot/driz_cr off.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="_flt/_flc files, wildcards or @lists")
    model_options(parser, default=None)
    parser.add_argument("--crbit", type=int,
                        help=f"DQ bit for cosmic rays (default {CR_BIT}, HST's: a warning for a file whose header "
                             "does not say HST)")
    parser.add_argument("--grow", type=int, default=1,
                        help="side of the box CRs are grown by, as driz_cr_grow (default 1: no growth)")
    parser.add_argument("--resetbits", help="DQ bits cleared first, as AstroDrizzle's resetbits (default, or '' "
                                            "or 'none': crbit; 0: none)")
    parser.add_argument("--no-reset", action="store_true", help="keep existing crbit flags (--resetbits 0)")
    parser.add_argument("--bits", help="DQ bits that count as good, as final_bits; other pixels are never flagged "
                                       f"(default '{DEFAULT_BITS}'; 'none': every pixel)")
    parser.add_argument("--bad-bits", help=argparse.SUPPRESS)  # deprecated 0.1.0 spelling, translated with a warning
    parser.add_argument("--fill-bits", help=f"DQ bits filled before detection (default '{DEFAULT_FILL_BITS}')")
    parser.add_argument("--lock-timeout", type=float, default=0.0,
                        help="seconds to wait for a file another process is updating")
    parser.add_argument("--star-shape", action="store_true",
                        help="also flag what each chip's isolated stars' shape cannot explain: cosmic rays on the "
                             "stars of crowded, undersampled frames (astro_deepcr.starshape; read noise from the "
                             "header)")
    look_options(parser)
    parallel_options(parser)
    parser.set_defaults(func=_cmd_flag)


def add_subparser(subparsers):
    """Register ``clean`` and ``flag``."""
    _add_clean(subparsers)
    _add_flag(subparsers)
