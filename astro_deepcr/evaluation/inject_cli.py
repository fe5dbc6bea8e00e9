# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astro-deepcr evaluate --inject FILE ...``: injection-recovery on your frames (`astro_deepcr.evaluation.frames`).

`add_inject_options` adds the options to ``evaluate``'s parser, `run_inject` runs them: one table, one JSON and one
PNG per frame evaluated, each frame named by its file name with as many parent folders as it takes to tell it from
the other frames (`astro_deepcr.commands.options.file_labels`). A frame that fails is reported on its own line and
never stops the others; when none is evaluated nothing is written.
"""

import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np

from ..commands.options import PROG, UsageError, extension, failed, file_labels
from .libraries import LIBRARIES

__all__ = ["add_inject_options", "run_inject", "png_names", "jsonable"]


def add_inject_options(parser):
    """The ``--inject`` option group of ``evaluate``; ``--library`` takes the names of `LIBRARIES`."""
    inject = parser.add_argument_group("injection-recovery on your own frames (astro_deepcr.evaluation.injection)")
    inject.add_argument("--inject", nargs="+", metavar="FILE",
                        help="inject real cosmic rays into these FITS frames and report what deepCR and "
                             "LACosmic recover (instead of the simulated evaluation); --seed, --out apply")
    inject.add_argument("--model", help="deepCR mask model (default: chosen from each header)")
    inject.add_argument("--n-cr", type=int, help="cosmic rays per trial (default: --density per megapixel)")
    inject.add_argument("--density", type=float, default=500.0, help="cosmic rays per megapixel (%(default)s)")
    inject.add_argument("--trials", type=int, default=1, help="independent injections per frame (%(default)s)")
    inject.add_argument("--library", default="hrc", choices=list(LIBRARIES), metavar="NAME",
                        help=f"cosmic rays to inject: {', '.join(LIBRARIES)} (%(default)s)")
    inject.add_argument("--ext", help="extension, e.g. SCI,1 or 0 (default SCI,1, else the first image)")
    inject.add_argument("--gain", type=float, help="e- per data unit when the header has none")
    inject.add_argument("--readnoise", type=float, help="read noise (e-) when the header has none")
    inject.add_argument("--placebo", action="store_true",
                        help="also inject faint point sources of each frame's own PSF with the same charges and "
                             "report how many each detector flags (faint stars it would mask)")
    inject.add_argument("--tune-objlim", action="store_true",
                        help="also LACosmic at deepCR's flag count with each objlim of TUNING_OBJLIMS (sigclip "
                             "bisected) and deepCR against the one that recalls the most, chosen with hindsight")


def jsonable(value):
    """``value`` for `json.dumps`: numpy numbers as Python ones, non-finite floats as None, ``roc`` keys left out."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items() if key != "roc"}
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def png_names(labels):
    """``injection_<label>.png`` per frame label (`file_labels`), ``.fits...`` dropped and folders joined by
    ``_``; distinct even where two labels differ only in characters a file name does not keep."""
    names, taken = [], set()
    for label in labels:
        stem = re.sub(r"[^A-Za-z0-9._+-]", "_", label.split(".fits")[0])
        name, count = f"injection_{stem}.png", 1
        while name in taken:
            count += 1
            name = f"injection_{stem}_{count}.png"
        taken.add(name)
        names.append(name)
    return names


def _check(args):
    """Usage errors (exit 2) before any file is read or written; returns the extension and the frame labels."""
    from ..validation import check_inject_options

    try:
        check_inject_options(trials=args.trials, n_cr=args.n_cr, density=args.density, gain=args.gain,
                             readnoise=args.readnoise, model=args.model)
        ext = extension(args.ext)
    except (ValueError, TypeError) as exc:
        raise UsageError(exc) from None
    return ext, file_labels(args.inject)


def run_inject(args):
    """``evaluate --inject``: returns the exit status (0 every frame evaluated, 1 one failed or none, 2 usage)."""
    from . import injection

    ext, labels = _check(args)
    out = Path(args.out)
    created = not out.exists()
    all_results, summary, pairs, pngs = [], {}, [], []
    for path, label, png_name in zip(args.inject, labels, png_names(labels), strict=True):
        try:  # one bad frame is reported and never stops the others
            frame = injection.read_frame(path, ext=ext, gain=args.gain, readnoise=args.readnoise, label=label)
            results = injection.run_frame(frame, model=args.model, seed=args.seed, n_cr=args.n_cr,
                                          density=args.density, n_trials=args.trials, library=args.library,
                                          tune_objlims=injection.TUNING_OBJLIMS if args.tune_objlim else None)
        except Exception as exc:
            failed(path, exc)
            continue
        out.mkdir(parents=True, exist_ok=True)
        png = out / png_name
        injection.plot_injection(results, png)
        pngs.append(png)
        all_results.append(results)
        summary[frame["name"]] = _frame_summary(results, png, args)
        if args.placebo:
            placebo = _placebo(frame, results, args)
            summary[frame["name"]]["placebo"] = placebo if isinstance(placebo, str) else placebo["detectors"]
            if not isinstance(placebo, str):
                pairs.append((results, placebo))
    n_failed = len(args.inject) - len(all_results)
    if not all_results:  # an earlier report in --out stays as it was
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        print(f"{PROG}: no frame evaluated ({n_failed} failed); nothing written", file=sys.stderr)
        return 1
    lines = _report_lines(all_results, pairs, args)
    (out / "injection.md").write_text("\n".join(["# Injection-recovery", "", *lines, ""]))
    (out / "injection.json").write_text(json.dumps(jsonable(summary), indent=2))
    print("\n".join(lines))
    print(f"written: {out / 'injection.md'}, {out / 'injection.json'} and {len(pngs)} PNG"
          f"{'s' if len(pngs) != 1 else ''} ({', '.join(png.name for png in pngs)})")
    if n_failed:
        print(f"{PROG}: {len(all_results)} of {len(args.inject)} frames evaluated; {n_failed} failed", file=sys.stderr)
    return 1 if n_failed else 0


def _frame_summary(results, png, args):
    """The JSON entry of one frame."""
    from . import injection

    entry = {key: results[key] for key in ("model", "reason", "sigclip", "seed", "n_trials", "n_injected", "n_good",
                                           "library")}
    match = results["flag_match"]
    entry.update(detectors=results["detectors"], png=str(png), flag_match=None if match is None else
                 dataclasses.asdict(match), significance=results["significance"])
    if args.tune_objlim:
        entry.update(tuned_matches=[dataclasses.asdict(found) for found in results["tuned_matches"]],
                     tuned_best=injection.tuned_lacosmic(results))
    return entry


def _report_lines(all_results, pairs, args):
    """The Markdown of ``injection.md`` (also printed)."""
    from . import injection

    lines = injection.table_lines(all_results)
    if args.tune_objlim:
        lines += ["", "LACosmic at deepCR's flag count with each objlim (sigclip bisected); 'best': the one that "
                  "recalls the most, chosen with hindsight on the same injection; p: that deepCR recalls fewer", "",
                  *injection.tuned_lines(all_results)]
    if pairs:
        lines += ["", "Faint point sources of each frame's PSF with the cosmic rays' charges (the placebo control): "
                  "recall by new flags of the cosmic rays / of the point sources", "",
                  *injection.placebo_lines(pairs)]
    return lines


def _placebo(frame, results, args):
    """`run_placebo` beside ``results`` (same seed, trials, detectors), or why it could not run."""
    from . import injection

    try:
        return injection.run_placebo(frame, library=args.library, model=args.model, seed=args.seed, n_cr=args.n_cr,
                                     density=args.density, n_trials=args.trials, flag_match=results["flag_match"])
    except ValueError as exc:  # no PSF measurable on the frame
        message = f"no placebo: {' '.join(str(exc).split())}"
        print(f"{PROG}: {frame['name']}: {message}", file=sys.stderr)
        return message
