# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astro-deepcr train-ground``: the mask model for seeing-limited frames, reproducibly, in one command."""

import dataclasses
import json
import os
import time

__all__ = ["add_subparser", "add_mix_arguments", "mix_from_args", "train_ground_command", "write_card"]

DESCRIPTION = ("Fine-tune (default: from ACS-WFC) or train a deepCR-mask network on simulated seeing-limited "
               "frames (astro_deepcr.training.ground: Moffat PSFs of 1.5-8 px FWHM, sky 5-5000 e-, saturation and "
               "bleeding, hot pixels, dead columns, real HRC cosmic rays, physical tracks through 10-250 um of "
               "silicon, faint 1-4 px hits; labels exact down to the noise; on request diffraction spikes, "
               "long-slit spectra, FWHM limits, cosmic rays on sources, real HST PSFs and extra faint stars). Writes "
               "OUTPUT/NAME.safetensors, its card NAME.json, models.json, log.json and a checkpoint that a second "
               "call resumes from. The "
               "defaults reproduce the shipped 'ground' model (under the name my-ground).")


def add_subparser(subparsers):
    """Register ``train-ground``."""
    from ..commands.options import positive_int

    parser = subparsers.add_parser("train-ground", help="train the mask model for seeing-limited frames",
                                   description=DESCRIPTION)
    parser.add_argument("output", help="run folder")
    defaults = _defaults()
    parser.add_argument("--name", default="my-ground",
                        help="model name (default my-ground: 'ground' is the built-in model this reproduces)")
    parser.add_argument("--init-from", default=defaults["init_from"], metavar="MODEL",
                        help="registered model to fine-tune ('none': train from scratch)")
    parser.add_argument("--depth", type=positive_int, default=defaults["depth"],
                        help="resolution levels (default: the --init-from model's, 2 from scratch); more than the "
                             "model's fine-tunes a deepened copy that starts as the same function")
    parser.add_argument("--width", type=positive_int, default=defaults["width"],
                        help="channels of the first level, from scratch only (default 32)")
    parser.add_argument("--steps", type=positive_int, default=defaults["steps"], help="length of the schedule")
    parser.add_argument("--stop-at", type=positive_int, default=None, metavar="STEP",
                        help="stop after this many steps of the --steps schedule (the shipped model stopped early)")
    parser.add_argument("--batch-size", type=positive_int, default=defaults["batch_size"])
    parser.add_argument("--crop", type=positive_int, default=defaults["crop"], help="side of a simulated frame (px)")
    parser.add_argument("--lr", type=float, default=None, help="default 2e-4 fine-tuning, 5e-3 from scratch")
    parser.add_argument("--seed", type=int, default=defaults["seed"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workers", type=int, default=0, help="data-loader processes (results do not change)")
    add_mix_arguments(parser)
    parser.add_argument("--validation-frames", type=positive_int, default=16, metavar="N",
                        help="simulated validation frames (256 px, never trained on) for the card's figures")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=train_ground_command)


def add_mix_arguments(parser):
    """The options of the simulated frames (`~astro_deepcr.training.ground.SceneMix` and the cosmic-ray sources),
    for ``train-ground`` and for scripts that rebuild a run's validation frames (``benchmarks/paired_models.py``);
    `mix_from_args` reads them back."""
    parser.add_argument("--long-slit", type=float, default=0.0, metavar="FRACTION",
                        help="fraction of long-slit spectra among the frames (default 0, as the shipped model)")
    parser.add_argument("--spikes", type=float, default=0.0, metavar="FRACTION",
                        help="fraction of imaging frames with diffraction spikes (default 0)")
    parser.add_argument("--fwhm-min", type=float, default=None, metavar="PX",
                        help="lower FWHM limit of the PSFs (default 1.5 px)")
    parser.add_argument("--fwhm-max", type=float, default=None, metavar="PX",
                        help="upper FWHM limit of the PSFs (default 8 px; an HST camera: 3)")
    parser.add_argument("--on-sources", type=float, default=0.0, metavar="FRACTION",
                        help="fraction of the cosmic rays of an imaging frame centred on a star or galaxy (default 0: "
                             "anywhere, as the shipped model)")
    parser.add_argument("--hst-psf", type=float, default=0.0, metavar="FRACTION",
                        help="fraction of imaging frames whose stars take a real undersampled HST PSF (drizzlepac's "
                             "TinyTim models of ACS/WFC and WFC3/UVIS, native or binned 2x2; default 0)")
    parser.add_argument("--faint-stars", type=float, default=0.0, metavar="PER_PX",
                        help="extra faint stars per pixel on Moffat imaging frames, peaks 2-30 times the sky's noise "
                             "(default 0)")
    parser.add_argument("--no-hrc-library", dest="hrc_library", action="store_false",
                        help="no real cosmic rays from the ACS/HRC frame, only physical tracks and faint hits "
                             "(keeps that frame's cosmic rays a held-out library)")


def mix_from_args(args):
    """The `GroundConfig` keywords of the options of `add_mix_arguments`."""
    return {"long_slit": args.long_slit, "spikes": args.spikes, "fwhm_min": args.fwhm_min, "fwhm_max": args.fwhm_max,
            "on_sources": args.on_sources, "hst_psf": args.hst_psf, "faint_stars": args.faint_stars,
            "hrc_library": args.hrc_library}


def _defaults():
    from .ground_train import GroundConfig

    return {field.name: field.default for field in dataclasses.fields(GroundConfig)}


def train_ground_command(args):
    """``train-ground``: returns an exit code."""
    from .ground_train import GroundConfig, train_ground

    init_from = None if str(args.init_from).lower() == "none" else args.init_from
    config = GroundConfig(init_from=init_from, depth=args.depth, width=args.width, steps=args.steps,
                          batch_size=args.batch_size, crop=args.crop, lr=args.lr, seed=args.seed, device=args.device,
                          threads=args.threads, workers=args.workers, name=args.name, stop_at=args.stop_at,
                          **mix_from_args(args))
    start = time.monotonic()
    path = train_ground(args.output, config, progress=not args.quiet)
    card = write_card(path, config, time.monotonic() - start, n_validation=args.validation_frames)
    print(f"wrote {path} and its card ({card['metrics']['validation']})")
    return 0


def _mix_words(config):
    low, high = config.mix().fwhm_range()
    words = [f"Moffat PSFs of {low:g}-{high:g} px FWHM"]
    if config.spikes:
        words.append(f"diffraction spikes on {config.spikes:.0%} of the imaging frames")
    if config.long_slit:
        words.append(f"{config.long_slit:.0%} long-slit spectra")
    if config.hst_psf:
        words[0] += (f" ({config.hst_psf:.0%} of the imaging frames instead: TinyTim PSFs of ACS/WFC and WFC3/UVIS, "
                     "native or binned 2x2)")
    if config.on_sources:
        words.append(f"{config.on_sources:.0%} of the cosmic rays of an imaging frame centred on a source")
    if config.faint_stars:
        words.append(f"{config.faint_stars:g} extra faint stars per px (peaks 2-30 sky sigma)")
    return ", ".join(words)


def write_card(path, config, seconds, n_validation=16, threshold=0.5):
    """The model card of a `train_ground` run: settings, time, and its figures on simulated validation frames."""
    from ..zoo import ModelSpec, file_sha256
    from .ground_train import model_probability, negatives_report, validation_frames

    spec = ModelSpec(name=config.name, kind="mask", depth=config.depth, width=config.width, file=path,
                     sha256=file_sha256(path), norm="batch", normalisation="scale", scale=1.0, threshold=threshold,
                     units="electron")
    frames = validation_frames(n_validation, crop=256, seed=config.seed, mix=config.mix(),
                               hrc_library=config.hrc_library)
    validation = negatives_report(model_probability(spec, config.threads), frames, threshold)
    with open(os.path.join(os.path.dirname(path), "log.json")) as stream:
        log = json.load(stream)
    steps_done, init_depth = log["steps_done"], log.get("init_depth")
    deepened = bool(config.init_from) and init_depth is not None and config.depth > init_depth
    source = (f"fine-tuned from {config.init_from}" + (f" deepened to {config.depth} levels" if deepened else "")
              if config.init_from else "trained from scratch")
    command = (f"astro-deepcr train-ground OUTPUT --init-from {config.init_from or 'none'} --steps {config.steps} "
               + (f"--stop-at {steps_done} " if steps_done < config.steps else "")
               + f"--batch-size {config.batch_size} --crop {config.crop} --seed {config.seed}"
               + ("" if config.init_from else f" --depth {config.depth} --width {config.width}")
               + (f" --depth {config.depth}" if deepened else "")
               + (f" --long-slit {config.long_slit:g}" if config.long_slit else "")
               + (f" --spikes {config.spikes:g}" if config.spikes else "")
               + (f" --fwhm-min {config.fwhm_min:g}" if config.fwhm_min is not None else "")
               + (f" --fwhm-max {config.fwhm_max:g}" if config.fwhm_max is not None else "")
               + (f" --on-sources {config.on_sources:g}" if config.on_sources else "")
               + (f" --hst-psf {config.hst_psf:g}" if config.hst_psf else "")
               + (f" --faint-stars {config.faint_stars:g}" if config.faint_stars else "")
               + ("" if config.hrc_library else " --no-hrc-library"))
    sources = ("the ACS/HRC j8bt06nyq harvest, " if config.hrc_library else "") + "physical tracks, faint hits"
    card = {"name": config.name, "kind": "mask", "depth": config.depth, "width": config.width,
            "file": os.path.basename(path), "sha256": spec.sha256, "norm": "batch", "normalisation": "scale",
            "scale": 1.0, "threshold": threshold, "units": "electron", "instrument": "", "detector": "",
            "filters": [],
            "description": f"deepCR-mask {config.depth}-{config.width} for seeing-limited (ground-based) CCD frames, "
                           f"{source} on simulated ground frames",
            "training_data": "simulated seeing-limited frames (astro_deepcr.training.ground, seed "
                             f"{config.seed}, {_mix_words(config)}); cosmic rays: {sources}; no real frame",
            "provenance": f"{command} ({seconds / 60:.1f} min on device {config.device})",
            "citation": "Zhang, K. & Bloom, J. S. 2020, ApJ, 889, 24 (deepCR)",
            "license": "BSD-3-Clause" + (" (fine-tuned from deepCR weights; see licenses/DEEPCR_LICENSE.rst)"
                                         if config.init_from else ""),
            "metrics": {"validation": validation, "training_frames": [],
                        "training_libraries": config.library_names()},
            "auto_precision": "float32"}
    folder = os.path.dirname(path)
    with open(os.path.join(folder, f"{config.name}.json"), "w") as stream:
        json.dump(card, stream, indent=1)
    with open(os.path.join(folder, "models.json"), "w") as stream:
        json.dump({"format": 1, "models": [card]}, stream, indent=1)
    return card
