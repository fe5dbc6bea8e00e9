# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astro-deepcr drizzle``: AstroDrizzle with deepCR masks (drizzlepac imported when it runs)."""

import argparse
import sys

from .options import PROG, common, info, model_options

__all__ = ["add_subparser"]


def _parameter(text):
    """``KEY=VALUE`` with VALUE read as bool, int, float or string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "false", "no"):
        return key.strip(), lowered in ("true", "yes")
    if lowered in ("none", ""):
        return key.strip(), None if lowered == "none" else ""
    for convert in (int, float):
        try:
            return key.strip(), convert(value)
        except ValueError:
            pass
    return key.strip(), value


def _cmd_drizzle(args):
    from ..drizzle import astrodrizzle
    from ..drizzle.astrodrizzle import log_on_console

    params = dict(args.param or [])
    if args.output:
        params["output"] = args.output
    # only the options given: one left out keeps the value of --config (or the task's default)
    given = {"cr_method": args.cr_method, "model": args.model, "threshold": args.threshold, "device": args.device,
             "precision": args.precision, "star_shape": args.star_shape or None}
    options = {key: value for key, value in given.items() if value is not None}
    try:
        with log_on_console(not args.quiet, prefix=f"{PROG}: "):
            astrodrizzle(list(args.files), configobj=args.config, **options, **params)
    except Exception as exc:
        print(f"{PROG}: FAILED drizzle of {', '.join(args.files)}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    info(args, f"drizzled {len(args.files)} input(s)"
               + (f" with cr_method={args.cr_method}" if args.cr_method else ""))
    return 0


def add_subparser(subparsers):
    """Register ``drizzle``."""
    parser = subparsers.add_parser(
        "drizzle", parents=[common()], help="AstroDrizzle with deepCR masks instead of median/blot/driz_cr",
        description="Run AstroDrizzle on the inputs with deepCR cosmic-ray masks (works for one exposure).")
    parser.add_argument("files", nargs="+", metavar="FILE", help="inputs as AstroDrizzle takes them")
    parser.add_argument("--output", help="rootname of the drizzled products")
    parser.add_argument("--cr-method", choices=("deepcr", "driz_cr"),
                        help="deepcr (default) or AstroDrizzle's own driz_cr")
    model_options(parser, default=None)
    parser.add_argument("--star-shape", action="store_true",
                        help="also flag what each chip's isolated stars' own shape cannot explain (cosmic rays on "
                             "the stars of crowded, undersampled frames; read noise from the headers; off by "
                             "default)")
    parser.add_argument("--config", help="an AstroDrizzle or astro_deepcr.drizzle.astrodrizzle .cfg file, "
                                         "or 'defaults'")
    parser.add_argument("-p", "--param", action="append", type=_parameter, metavar="KEY=VALUE",
                        help="any AstroDrizzle parameter or deepCR option (bits, fill_bits...), e.g. "
                             "-p final_bits=64 -p num_cores=1; repeatable")
    parser.set_defaults(func=_cmd_drizzle)
