# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astro-deepcr adapt``: fine-tune a mask model on your own frames (`astro_deepcr.adapt`)."""

import sys
import time

__all__ = ["add_subparser", "adapt_command", "adapt_frame", "read_adapt_frame"]


def add_subparser(subparsers):
    """Register ``adapt``."""
    from .commands.options import positive_int
    from .evaluation.libraries import LIBRARIES

    parser = subparsers.add_parser(
        "adapt", help="fine-tune a mask model on your own frames (injection), checked on held-out parts",
        description="Fine-tune a shipped mask model on your frames by injecting cosmic rays into them (their own "
                    "cosmic-ray candidates kept out of the loss), check it on the held-out part of every frame with "
                    "a cosmic-ray library the fine-tuning did not use, and write DIR/NAME.safetensors with its card "
                    "(before/after table), listed in DIR/models.json beside the other models there, its table "
                    "appended to DIR/adapt.md -- or nothing, when the adapted model is worse. Use the result with "
                    "model='DIR/NAME.safetensors'.")
    parser.add_argument("frames", nargs="+", metavar="FRAME", help="FITS files (SCI,1 or the first image)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR")
    parser.add_argument("--model", default=None, help="base model (default: chosen from the first frame's header)")
    parser.add_argument("--name", default=None, help="name of the adapted model (default: BASE-adapted)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a model of the same name in DIR (otherwise the run stops before training)")
    parser.add_argument("--ext", default=None, help="extension of every frame (default SCI,1 or the first image)")
    parser.add_argument("--gain", type=float, default=None, help="e-/ADU when the header has none")
    parser.add_argument("--readnoise", type=float, default=None, help="e- when the header has none")
    parser.add_argument("--steps", type=positive_int, default=400)
    parser.add_argument("--holdout", type=float, default=0.3, help="fraction of each frame held out for the check")
    parser.add_argument("--check-library", default=None, metavar="NAME", choices=list(LIBRARIES),
                        help=f"cosmic-ray library of the check: {', '.join(LIBRARIES)} (default wfpc2; see "
                             "astro_deepcr.evaluation.libraries)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=positive_int, default=None)
    parser.add_argument("--release-stars", action="store_true",
                        help="keep the flagged stars that the frame's own PSF explains in the loss (crowded frames; "
                             "off by default, see astro_deepcr.adapt.psf_explained)")
    parser.add_argument("--faint-stars", type=float, default=0.0, metavar="PER_PX",
                        help="faint point sources of each frame's own PSF per px added to the training samples as "
                             "negatives, for frames where the model masks faint stars (sharp seeing on a bright sky; "
                             "e.g. 1e-3; the check then also counts the faint point sources flagged; default 0)")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=adapt_command)


def read_adapt_frame(path, ext=None, gain=None, readnoise=None, label=None):
    """An `~astro_deepcr.adapt.AdaptFrame` from a FITS file (electrons, DQ bad pixels, saturation); ``label``
    names it (default the file name; `astro_deepcr.evaluation.frames.read_frame`)."""
    from .evaluation.injection import read_frame

    return adapt_frame(read_frame(path, ext=ext, gain=gain, readnoise=readnoise, label=label))


def adapt_frame(frame):
    """An `~astro_deepcr.adapt.AdaptFrame` from a frame dict of `astro_deepcr.evaluation.injection.read_frame`.

    Its keys: ``name``, ``electrons``, ``readnoise`` (e-), ``dq`` and ``satlevel`` (or None), ``header``; bad
    pixels come from the DQ array as every door reads them, saturated ones as the core finds them.
    """
    from .adapt import AdaptFrame
    from .bright import saturated_pixels
    from .detection import pixel_masks

    image = frame["electrons"]
    saturated = saturated_pixels(image, dq=frame["dq"], satlevel=frame["satlevel"])
    bad, _ = pixel_masks(image.shape, dq=frame["dq"])
    return AdaptFrame(frame["name"], image, frame["readnoise"], bad & ~saturated, saturated, frame["header"])


def _check_options(args):
    """Usage errors (exit 2) before a frame is read: the options, the base model, the frames' labels."""
    from .commands.options import UsageError, extension, file_labels
    from .training.ground import MAX_FAINT_STARS
    from .validation import check_number
    from .zoo import get_model

    try:
        if not 0.05 <= args.holdout <= 0.9:
            raise ValueError(f"--holdout must be in [0.05, 0.9], not {args.holdout}")
        if not (0.0 <= args.faint_stars <= MAX_FAINT_STARS):  # also false for nan
            raise ValueError(f"--faint-stars must be between 0 and {MAX_FAINT_STARS} per px, not {args.faint_stars}")
        for name, value in (("--gain", args.gain), ("--readnoise", args.readnoise)):
            if value is not None:
                check_number(value, name, positive=name == "--gain")
        ext = extension(args.ext)
        if args.model is not None:
            spec = get_model(args.model, kind="mask")
            if spec.units != "electron":
                raise ValueError(f"model {spec.name} expects {spec.units}; adapt works in electrons")
    except (ValueError, TypeError) as exc:
        raise UsageError(exc) from None
    return ext, file_labels(args.frames)


def _read_frames(args, ext, labels):
    """Every frame, or None after one line per frame that cannot be read (and a summary line)."""
    from .commands.options import PROG, failed

    frames = []
    for path, label in zip(args.frames, labels, strict=True):
        try:
            frames.append(read_adapt_frame(path, ext, args.gain, args.readnoise, label=label))
        except Exception as exc:  # noqa: BLE001 -- every reason a frame cannot be read is reported the same way
            failed(path, exc)
    if len(frames) < len(args.frames):
        print(f"{PROG}: adapt: {len(args.frames) - len(frames)} of {len(args.frames)} frames could not be read; "
              "nothing trained", file=sys.stderr)
        return None
    return frames


def adapt_command(args):
    """``adapt``: returns an exit code (2 usage, 1 a frame unreadable, refused or failed, 0 written)."""
    from .adapt import AdaptationRefused, adapt_model

    ext, labels = _check_options(args)
    start = time.monotonic()
    frames = _read_frames(args, ext, labels)
    if frames is None:
        return 1
    try:
        path, table = adapt_model(frames, args.output, model=args.model, name=args.name, steps=args.steps,
                                  seed=args.seed, holdout=args.holdout, threads=args.threads,
                                  check_library=args.check_library, release_stars=args.release_stars,
                                  faint_stars=args.faint_stars, overwrite=args.overwrite, progress=not args.quiet)
    except AdaptationRefused as exc:
        print(f"adapt: refused: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:  # a model already in DIR, a frame too small, ...: nothing left behind
        print(f"adapt: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print("\n".join(table))
    print(f"wrote {path} ({time.monotonic() - start:.0f} s)")
    return 0
