# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""What the sub-commands of ``astro-deepcr`` share: option groups, argument types, reporting, `UsageError`."""

import argparse
import math
import os
import sys

__all__ = ["PROG", "UsageError", "error", "info", "report", "extension", "failed", "file_labels", "run_parallel",
           "none_bits", "positive_int", "positive_float", "probability", "common", "model_options", "parallel_options",
           "look_options", "check_model_and_device"]

PROG = "astro-deepcr"


class UsageError(Exception):
    """Bad arguments found after parsing (exit status 2)."""


def error(message):
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)


def info(args, message):
    if not getattr(args, "quiet", False):
        print(message)


def report(args, results, verb):
    """Print one line per file (failures always, on stderr); return the exit status."""
    failed = [result for result in results if not result.ok]
    for result in results:
        if result.ok:
            counts = ", ".join(f"{key}: {value}" for key, value in result.n_cr.items())
            target = "" if result.output == result.path else f" -> {result.output}"
            info(args, f"{result.path}{target} (cosmic-ray pixels {counts or 'none'})")
            if result.message:
                info(args, f"  warning: {result.message}")
            for product in result.products:
                info(args, f"  wrote {product}")
        else:
            print(f"{PROG}: FAILED {result.path}: {result.message}", file=sys.stderr)
    summary = f"{len(results) - len(failed)} of {len(results)} files {verb}"
    if failed:
        print(f"{PROG}: {summary}; {len(failed)} failed", file=sys.stderr)
        return 1
    info(args, summary)
    return 0


def extension(text):
    """``--ext`` of the commands that read one image per file: ``NAME``, ``NAME,VERSION`` (e.g. ``SCI,1``) or an
    index (e.g. ``0``) as `astropy.io.fits` takes it; None for None.

    >>> from astro_deepcr.commands.options import extension
    >>> extension("SCI,1"), extension("0"), extension("SCI"), extension(None)
    (('SCI', 1), 0, 'SCI', None)
    """
    if text is None:
        return None
    name, _, version = str(text).partition(",")
    if name.strip().lstrip("-").isdigit() and not version:
        return int(name)
    if version and not version.strip().isdigit():
        raise ValueError(f"--ext {text!r}: give NAME, NAME,VERSION (e.g. SCI,1) or an index (e.g. 0)")
    return (name.strip(), int(version)) if version else name.strip()


def failed(path, exc):
    """Print ``astro-deepcr: FAILED <path>: <reason>`` on stderr, the reason on one line and without a leading
    ``<path>: `` that would repeat the file's name."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    prefix = f"{path}: "
    print(f"{PROG}: FAILED {path}: {reason[len(prefix):] if reason.startswith(prefix) else reason}", file=sys.stderr)


def file_labels(paths):
    """A distinct label per input file: its name, with as many parent folders as it takes to tell it from the
    others (``d1/a.fits`` and ``d2/a.fits``; ``b.fits`` stays ``b.fits``).

    Raises
    ------
    UsageError
        A file given twice (the same file under two spellings or through a link included).
    """
    seen = {}
    for path in paths:
        real = os.path.realpath(path)
        if real in seen:
            raise UsageError(f"{path} is given twice (also as {seen[real]})")
        seen[real] = path
    parts = [os.path.abspath(path).split(os.sep) for path in paths]
    labels = []
    for own in parts:
        others = [other for other in parts if other is not own]
        depth = next(k for k in range(1, len(own) + 1) if all(other[-k:] != own[-k:] for other in others))
        labels.append("/".join(own[-depth:]))
    return labels


def run_parallel(args, run):
    """Call ``run(client)`` with a Dask client for ``--dask`` or None."""
    from .. import batch

    if args.dask:
        if args.jobs > 1:
            raise UsageError("give either --jobs or --dask, not both")
        with batch.dask_client(args.dask) as client:
            return run(client)
    return run(None)


def none_bits(text):
    """A DQ bit expression from the command line: ``none`` means None (every pixel good / none filled)."""
    return None if text is None or str(text).strip().lower() == "none" else text


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def positive_float(text):
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, not {text}")
    return value


def probability(text):
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], not {text}")
    return value


def common():
    """Parent parser of every core sub-command: ``-q/--quiet``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-q", "--quiet", action="store_true", help="no progress bars or information output")
    return parent


def model_options(parser, default=None):
    parser.add_argument("--model", default=default,
                        help="deepCR-mask model name or .safetensors file (default: from each file's header: "
                             "INSTRUME, DETECTOR, FILTER*)" if default is None else
                             f"deepCR-mask model name or .safetensors file (default {default})")
    parser.add_argument("--threshold", type=probability, help="probability threshold (default: the model's)")
    parser.add_argument("--device", help="torch device: auto, cpu, cuda, cuda:N (default: conf.device)")
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"),
                        help="network precision (default: conf.precision, 'auto': bfloat16 where the hardware has "
                             "it natively and the model passed its bf16 validation, else float32)")


def parallel_options(parser):
    parser.add_argument("-j", "--jobs", type=positive_int, default=1,
                        help="local worker processes, each loading the model once (default 1)")
    parser.add_argument("--dask", metavar="SCHEDULER_ADDRESS",
                        help="spread the files over the workers of this Dask scheduler (tcp://host:8786)")


def look_options(parser):
    parser.add_argument("--plot", action="store_true",
                        help="write a quick-look PNG per image (mask over the image, largest CRs, brightest "
                             "sources)")
    parser.add_argument("--regions", action="store_true",
                        help="write a DS9 region file per image (one polygon per cosmic ray)")


def check_model_and_device(model, device):
    from ..engine import resolve_device
    from ..zoo import get_model

    try:
        get_model(model, kind="mask")
        resolve_device(device)
    except (ValueError, TypeError) as exc:
        raise UsageError(exc) from None
