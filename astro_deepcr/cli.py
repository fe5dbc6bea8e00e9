# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The ``astro-deepcr`` command line tool.

Sub-commands: ``clean``, ``flag``, ``drizzle``, ``models``, ``bench``,
``demo``, plus those of the plug-in modules in `PLUGINS` that are installed
(``evaluate``, ``make-dataset``, ``train``). Exit status: 0 when everything
succeeded, 1 when a file (or the run) failed -- with one line per failed file
on stderr -- and 2 for usage errors. The work is done by `astro_deepcr.batch`
and the modules it calls; this module only parses and reports.
"""

import argparse
import importlib
import os
import sys

__all__ = ["main", "build_parser", "PLUGINS"]

PROG = "astro-deepcr"
#: Modules that add sub-commands with ``add_subparser(subparsers)``; skipped when absent.
PLUGINS = ("astro_deepcr.evaluation.report", "astro_deepcr.training.cli", "astro_deepcr.evaluation.simulated_demo",
           "astro_deepcr.precision_cli")


class UsageError(Exception):
    """Bad arguments found after parsing (exit status 2)."""


def _error(message):
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)


def _info(args, message):
    if not getattr(args, "quiet", False):
        print(message)


# -- sub-commands -------------------------------------------------------------------------------------------------


def _report(args, results, verb):
    """Print one line per file (failures always, on stderr); return the exit status."""
    failed = [result for result in results if not result.ok]
    for result in results:
        if result.ok:
            counts = ", ".join(f"{key}: {value}" for key, value in result.n_cr.items())
            target = "" if result.output == result.path else f" -> {result.output}"
            _info(args, f"{result.path}{target} (cosmic-ray pixels {counts or 'none'})")
            if result.message:
                _info(args, f"  warning: {result.message}")
            for product in result.products:
                _info(args, f"  wrote {product}")
        else:
            print(f"{PROG}: FAILED {result.path}: {result.message}", file=sys.stderr)
    summary = f"{len(results) - len(failed)} of {len(results)} files {verb}"
    if failed:
        print(f"{PROG}: {summary}; {len(failed)} failed", file=sys.stderr)
        return 1
    _info(args, summary)
    return 0


def _parallel(args, run):
    """Call ``run(client)`` with a Dask client for ``--dask`` or None."""
    from . import batch

    if args.dask:
        if args.jobs > 1:
            raise UsageError("give either --jobs or --dask, not both")
        with batch.dask_client(args.dask) as client:
            return run(client)
    return run(None)


def _none(text):
    """A DQ bit expression from the command line: ``none`` means None (every pixel good / none filled)."""
    return None if text is None or str(text).strip().lower() == "none" else text


def _cmd_clean(args):
    from . import batch

    def run(client):
        return batch.clean_files(
            args.files, args.outdir, model=args.model, threshold=args.threshold, inpaint=args.inpaint,
            ext=args.ext or (), device=args.device, precision=args.precision, tile_size=args.tile,
            write_probability=args.probability,
            overwrite=args.overwrite, gain=args.gain, threads=args.threads, jobs=args.jobs, client=client,
            progress=not args.quiet, bits=_none(args.bits), fill_bits=_none(args.fill_bits), crbit=args.crbit,
            use_dq=not args.no_dq, plot=args.plot, regions=args.regions)

    try:
        results = _parallel(args, run)
    except (ValueError, TypeError) as exc:
        raise UsageError(exc) from None
    return _report(args, results, "cleaned")


def _expand(patterns):
    """drizzlepac-style inputs (wildcards, ``@lists``, association tables) per argument.

    Returns ``(names, failures)``: an argument matching nothing is a failure,
    not a reason to stop.
    """
    from .batch import FileResult
    from .drizzle import parse_inputs

    names, failures = [], []
    for pattern in patterns:
        try:
            names.extend(parse_inputs(pattern))
        except ValueError as exc:
            failures.append(FileResult(pattern, False, str(exc)))
    return names, failures


def _cmd_flag(args):
    from . import batch
    from .zoo import get_model

    if args.model is not None:
        try:
            get_model(args.model, kind="mask")
        except ValueError as exc:
            raise UsageError(exc) from None
    names, failures = _expand(args.files)
    options = dict(model=args.model, threshold=args.threshold, crbit=args.crbit, grow=args.grow,
                   device=args.device, precision=args.precision, lock_timeout=args.lock_timeout)
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
        results = _parallel(args, run) if names else []
    except (ValueError, TypeError) as exc:
        raise UsageError(exc) from None
    return _report(args, failures + results, "flagged")


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
    from .drizzle import astrodrizzle
    from .drizzle.astrodrizzle import log_on_console

    params = dict(args.param or [])
    if args.output:
        params["output"] = args.output
    options = {} if args.cr_method == "driz_cr" else {"model": args.model, "threshold": args.threshold,
                                                      "device": args.device, "precision": args.precision}
    try:
        with log_on_console(not args.quiet, prefix=f"{PROG}: "):
            astrodrizzle(list(args.files), cr_method=args.cr_method, configobj=args.config, **options, **params)
    except Exception as exc:
        print(f"{PROG}: FAILED drizzle of {', '.join(args.files)}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    _info(args, f"drizzled {len(args.files)} input(s) with cr_method={args.cr_method}")
    return 0


def _cmd_models_list(args):
    from .zoo import get_model, list_models

    rows = [("name", "kind", "arch", "instrument", "units", "threshold")]
    for name in list_models(args.kind):
        spec = get_model(name)
        instrument = "/".join(filter(None, [spec.instrument, spec.detector])) or "any"
        threshold = "n/a" if spec.threshold is None else f"{spec.threshold:g}"
        rows.append((name, spec.kind, spec.arch, instrument, spec.units, threshold))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _cmd_models_info(args):
    from .zoo import get_model

    try:
        print(get_model(args.name).card())
    except ValueError as exc:
        raise UsageError(exc) from None
    return 0


def _check_model_and_device(model, device):
    from .engine import resolve_device
    from .zoo import get_model

    try:
        get_model(model, kind="mask")
        resolve_device(device)
    except (ValueError, TypeError) as exc:
        raise UsageError(exc) from None


def _cmd_bench(args):
    from .bench import benchmark

    _check_model_and_device(args.model, args.device)
    timing = benchmark(shape=tuple(args.shape), model=args.model, device=args.device, tile_size=args.tile,
                       threads=args.threads, repeat=args.repeat)
    print(f"model {timing['model']} on {timing['device']}, image {args.shape[0]}x{args.shape[1]}: "
          f"{timing['seconds']:.3f} s (best of {args.repeat}), {timing['megapixels_per_s']:.2f} Mpix/s, "
          f"peak RSS {timing['peak_rss_mib']:.0f} MiB"
          + (f", peak GPU memory {timing['peak_gpu_mib']:.0f} MiB" if timing.get("peak_gpu_mib") else ""))
    return 0


def _cmd_demo(args):
    if args.simulated:
        run_simulated = getattr(args, "simulated_demo", None)
        if run_simulated is None:
            raise UsageError("--simulated needs the plug-in astro_deepcr.evaluation.simulated_demo, which could not be "
                             "loaded (is astro_deepcr.training importable?)")
        _check_model_and_device(args.model or "ACS-WFC", args.device)
        summary = run_simulated(args)
        _info(args, f"simulated {args.shape[0]}x{args.shape[1]} {args.field} exposure (seed {args.seed}): "
                    f"{summary['n_true']} cosmic-ray pixels")
        _info(args, f"{summary['model']} at threshold {summary['threshold']:g}: {summary['n_detected']} pixels "
                    f"flagged, TPR {summary['tpr']:.3f}, FPR {summary['fpr']:.5f}")
        _info(args, f"wrote {summary['fits']} and {summary['png']}")
        return 0
    from .demo import run_demo, summary_lines

    if args.model is not None:
        _check_model_and_device(args.model, args.device)
    try:
        summary = run_demo(args.outdir, model=args.model, threshold=args.threshold, device=args.device)
    except FileNotFoundError as exc:
        _error(exc)
        return 1
    for line in summary_lines(summary):
        _info(args, line)
    _info(args, f"wrote {', '.join(filter(None, (summary['fits'], summary['png'], summary['regions'])))}")
    return 0


# -- parser -------------------------------------------------------------------------------------------------------


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _probability(text):
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], not {text}")
    return value


def _common():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars or information output")
    return common


def _model_options(parser, default=None):
    parser.add_argument("--model", default=default,
                        help="deepCR-mask model name or .safetensors file (default: from each file's header: "
                             "INSTRUME, DETECTOR, FILTER*)" if default is None else
                             f"deepCR-mask model name or .safetensors file (default {default})")
    parser.add_argument("--threshold", type=_probability, help="probability threshold (default: the model's)")
    parser.add_argument("--device", help="torch device: auto, cpu, cuda, cuda:N (default: conf.device)")
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"),
                        help="network precision (default: conf.precision, 'auto': bfloat16 where the hardware has "
                             "it natively and the model passed its bf16 validation, else float32)")


def _parallel_options(parser):
    parser.add_argument("-j", "--jobs", type=_positive_int, default=1,
                        help="local worker processes, each loading the model once (default 1)")
    parser.add_argument("--dask", metavar="SCHEDULER_ADDRESS",
                        help="spread the files over the workers of this Dask scheduler (tcp://host:8786)")


def _add_clean(subparsers, common):
    parser = subparsers.add_parser(
        "clean", parents=[common], help="clean cosmic rays in FITS files into an output folder",
        description="Detect and replace cosmic rays in every 2-D image extension; write the cleaned file, "
                    "with a CRMASK extension per image, to OUTDIR.")
    parser.add_argument("files", nargs="+", metavar="IN.fits", help="input FITS files")
    parser.add_argument("-o", "--outdir", required=True, help="output folder (created if needed)")
    parser.add_argument("--ext", action="append", metavar="EXT",
                        help="only this extension: NAME (e.g. SCI), NAME,VER or an index; repeatable")
    _model_options(parser)
    parser.add_argument("--inpaint", default="medmask",
                        help="medmask (default), biharmonic, a deepCR-inpaint model, or none (masks only)")
    parser.add_argument("--tile", type=_positive_int,
                        help="tile size in pixels (default: conf.tile_size; 0 there: 1024 on OpenVINO, 512 on torch)")
    parser.add_argument("--threads", type=_positive_int, help="CPU threads per process")
    parser.add_argument("--gain", type=float, help="electrons per data unit, for data in ADU or without BUNIT")
    parser.add_argument("--probability", action="store_true", help="also write CRPROB probability extensions")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    from .dq import CR_BIT, DEFAULT_BITS, DEFAULT_FILL_BITS

    dq = parser.add_argument_group("HST DQ arrays (SCI,N with DQ,N)")
    dq.add_argument("--bits", default=DEFAULT_BITS,
                    help=f"good DQ bits, drizzlepac's sense (default '{DEFAULT_BITS}'; 'none': every pixel); "
                         "pixels with other bits (saturated, hot, bad...) are never flagged nor replaced")
    dq.add_argument("--fill-bits", default=DEFAULT_FILL_BITS,
                    help=f"DQ bits filled before detection (default '{DEFAULT_FILL_BITS}')")
    dq.add_argument("--crbit", type=int, default=CR_BIT,
                    help=f"DQ bit set on the cosmic rays found (default {CR_BIT})")
    dq.add_argument("--no-dq", action="store_true", help="ignore DQ arrays")
    _look_options(parser)
    _parallel_options(parser)
    parser.set_defaults(func=_cmd_clean)


def _look_options(parser):
    parser.add_argument("--plot", action="store_true",
                        help="write a quick-look PNG per image (mask over the image, largest CRs, brightest "
                             "sources)")
    parser.add_argument("--regions", action="store_true",
                        help="write a DS9 region file per image (one polygon per cosmic ray)")


def _add_flag(subparsers, common):
    parser = subparsers.add_parser(
        "flag", parents=[common], help="flag cosmic rays in the DQ arrays of HST _flt/_flc files (in place)",
        description="OR the cosmic-ray bit into DQ,N where deepCR finds cosmic rays in SCI,N; each file is "
                    "rewritten atomically. Then drizzle with resetbits=0, median/blot/driz_cr off.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="_flt/_flc files, wildcards or @lists")
    _model_options(parser, default=None)
    from .dq import CR_BIT, DEFAULT_BITS, DEFAULT_FILL_BITS

    parser.add_argument("--crbit", type=int, default=CR_BIT, help=f"DQ bit for cosmic rays (default {CR_BIT})")
    parser.add_argument("--grow", type=int, default=1,
                        help="side of the box CRs are grown by, as driz_cr_grow (default 1: no growth)")
    parser.add_argument("--resetbits", help="DQ bits cleared first, as AstroDrizzle's resetbits (default: crbit)")
    parser.add_argument("--no-reset", action="store_true", help="keep existing crbit flags (--resetbits 0)")
    parser.add_argument("--bits", help="DQ bits that count as good, as final_bits; other pixels are never flagged "
                                       f"(default '{DEFAULT_BITS}'; 'none': every pixel)")
    parser.add_argument("--bad-bits", help=argparse.SUPPRESS)  # deprecated 0.1.0 spelling, translated with a warning
    parser.add_argument("--fill-bits", help=f"DQ bits filled before detection (default '{DEFAULT_FILL_BITS}')")
    parser.add_argument("--lock-timeout", type=float, default=0.0,
                        help="seconds to wait for a file another process is updating")
    _look_options(parser)
    _parallel_options(parser)
    parser.set_defaults(func=_cmd_flag)


def _add_drizzle(subparsers, common):
    parser = subparsers.add_parser(
        "drizzle", parents=[common], help="AstroDrizzle with deepCR masks instead of median/blot/driz_cr",
        description="Run AstroDrizzle on the inputs with deepCR cosmic-ray masks (works for one exposure).")
    parser.add_argument("files", nargs="+", metavar="FILE", help="inputs as AstroDrizzle takes them")
    parser.add_argument("--output", help="rootname of the drizzled products")
    parser.add_argument("--cr-method", choices=("deepcr", "driz_cr"), default="deepcr",
                        help="deepcr (default) or AstroDrizzle's own driz_cr")
    _model_options(parser, default=None)
    parser.add_argument("--config", help="an AstroDrizzle or astro_deepcr.drizzle.astrodrizzle .cfg file, "
                                         "or 'defaults'")
    parser.add_argument("-p", "--param", action="append", type=_parameter, metavar="KEY=VALUE",
                        help="any AstroDrizzle parameter or deepCR option (bits, fill_bits...), e.g. "
                             "-p final_bits=64 -p num_cores=1; repeatable")
    parser.set_defaults(func=_cmd_drizzle)


def _add_models(subparsers, common):
    parser = subparsers.add_parser("models", parents=[common], help="list the models or show a model card")
    actions = parser.add_subparsers(dest="action", metavar="{list,info}")
    listing = actions.add_parser("list", help="table of the registered models (default)")
    listing.add_argument("--kind", choices=("mask", "inpaint"), help="only this kind")
    listing.set_defaults(func=_cmd_models_list)
    info = actions.add_parser("info", help="print the model card of NAME")
    info.add_argument("name", metavar="NAME")
    info.set_defaults(func=_cmd_models_info)
    parser.set_defaults(func=_cmd_models_list, kind=None)


def _add_bench(subparsers, common):
    parser = subparsers.add_parser("bench", parents=[common], help="time deepCR on a generated image")
    parser.add_argument("--shape", type=_positive_int, nargs=2, default=(1024, 1024), metavar=("NY", "NX"),
                        help="image shape (default 1024 1024)")
    parser.add_argument("--model", default="ACS-WFC", help="deepCR-mask model (default ACS-WFC)")
    parser.add_argument("--device", help="torch device (default: conf.device)")
    parser.add_argument("--tile", type=_positive_int,
                        help="tile size (default: conf.tile_size; 0 there: 1024 on OpenVINO, 512 on torch)")
    parser.add_argument("--threads", type=_positive_int, help="CPU threads")
    parser.add_argument("--repeat", type=_positive_int, default=3, help="timed runs; the best is shown (3)")
    parser.set_defaults(func=_cmd_bench)


def _add_demo(subparsers, common):
    parser = subparsers.add_parser(
        "demo", parents=[common], help="deepCR on a real HST exposure: numbers, FITS, quick-look PNG, DS9 regions",
        description="Run deepCR on the ACS/HRC exposure of 47 Tuc that spherical_geometry ships "
                    "(j8bt06nyq_flt.fits; model from its header, DQ respected), print the counts and write "
                    "demo.fits, demo.png and demo.reg to OUTDIR. --simulated: a simulated exposure with known "
                    "cosmic rays instead, with true- and false-positive rates.")
    parser.add_argument("-o", "--outdir", default="demo_out", help="output folder (default demo_out)")
    parser.add_argument("--model", help="deepCR-mask model (default: from the header; ACS-WFC when simulated)")
    parser.add_argument("--threshold", type=_probability, help="probability threshold (default: the model's)")
    parser.add_argument("--device", help="torch device (default: conf.device)")
    parser.add_argument("--simulated", action="store_true",
                        help="simulated exposure with known cosmic rays (options below; needs the training "
                             "plug-in)")
    parser.set_defaults(func=_cmd_demo)


def _add_plugins(subparsers):
    """Sub-commands of the optional modules in `PLUGINS`; a missing or broken one is left out."""
    for module_name in PLUGINS:
        try:
            module = importlib.import_module(module_name)
            module.add_subparser(subparsers)
        except Exception:  # an optional part must never break the core commands
            continue


def build_parser():
    """The `argparse.ArgumentParser` of ``astro-deepcr``."""
    from .provenance import version as __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description="deepCR cosmic-ray detection and cleaning for astronomical images.",
        epilog="Run 'astro-deepcr COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common()
    for add in (_add_clean, _add_flag, _add_drizzle, _add_models, _add_bench, _add_demo):
        add(subparsers, common)
    _add_plugins(subparsers)
    return parser


def main(argv=None):
    """Run ``astro-deepcr`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    if getattr(args, "func", None) is None:
        parser.print_usage(sys.stderr)
        _error("a command is required")
        return 2
    from .batch import strict_truncation

    strict_truncation()
    from astropy import log

    level = log.level
    if getattr(args, "quiet", False):  # --quiet: the model choice and other INFO lines too
        log.setLevel("WARNING")
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        _error(exc)
        return 2
    except BrokenPipeError:  # output piped into head & co.: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:
        _error(f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        log.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())
