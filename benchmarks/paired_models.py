#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Two deepCR mask models paired on the same injections: is a candidate significantly worse than a model?

For each real frame (``injection_frames.LOADERS``) and cosmic-ray library, both models run as detectors in one
`~astro_deepcr.evaluation.recovery.injection_recovery` (seed 22, 500 cosmic rays per megapixel per trial, about
1000 in all, as ``injection_frames.py``); recall by new flags; ``b/c p``: cosmic rays only the candidate / only
the reference finds, and the one-sided exact binomial p that the candidate recalls fewer, overall and below
1000 e-. This is the rule by which a candidate may replace a shipped model (docs/ground.rst).

``--equal-flags``: the candidate at the threshold that gives the reference's flag count on each uninjected frame
(`~astro_deepcr.evaluation.detectors.match_deepcr_flags`): two networks compared at their own thresholds differ
in calibration as much as in what they can tell apart; at equal flags only the second is left, so a candidate
that loses at its threshold but wins here needs another threshold, not another network.

``--star-shape``: the candidate runs with the star-shape test (`astro_deepcr.starshape`, the frame's read noise;
``detect(star_shape=True)``): ``ground`` against ``ground`` with the test is how the test was judged
(docs/ground_search.rst, R14). Not with ``--equal-flags``.

``--validation N``: also both models on ``N`` simulated validation frames of the scene mix given by
train-ground's own options (``--long-slit``, ``--spikes``, ``--fwhm-min`` / ``--fwhm-max``, ``--on-sources``,
``--faint-stars``, ``--no-hrc-library``; `astro_deepcr.training.ground_cli.add_mix_arguments`)
(`astro_deepcr.training.ground_train.validation_frames`, never
trained on; seed 0): pixel TPR, FPR and the false flags on their cosmic-ray-free versions, over all frames and
per kind (imaging, long-slit). ::

    python benchmarks/paired_models.py RUN/my-ground.safetensors [--reference ground]
        [--frames NAME ...] [--libraries wfpc2 thin-ccd] [--equal-flags | --star-shape]
        [--validation 16 --long-slit 0.25 --spikes 0.5 [--fwhm-min 1.0] [--fwhm-max 3.0] [--on-sources 0.5]
         [--faint-stars 1e-3]
         [--no-hrc-library]]
"""

import argparse
import pathlib
import sys
import time
import warnings

from astro_deepcr.training.ground_cli import add_mix_arguments, mix_from_args

sys.path.insert(0, str(pathlib.Path(__file__).parent))


def paired_lines(candidate, reference="ground", frames=None, libraries=("wfpc2", "thin-ccd"), seed=22, density=500.0,
                 equal_flags=False, star_shape=False):
    """The paired table on ``frames`` (default: every frame of ``injection_frames.LOADERS`` that is installed);
    ``equal_flags``: the candidate at the threshold that gives the reference's flag count on each uninjected frame
    (`~astro_deepcr.evaluation.detectors.match_deepcr_flags`), a column says which; ``star_shape``: the candidate
    with the star-shape test."""
    if equal_flags and star_shape:
        raise ValueError("--equal-flags matches the network's threshold; it cannot be combined with --star-shape")
    import injection_frames as inj

    from astro_deepcr.detection import choose_model
    from astro_deepcr.evaluation.detectors import match_deepcr_flags
    from astro_deepcr.evaluation.frames import _frame_setup
    from astro_deepcr.evaluation.injection import (
        compare_detectors,
        cosmic_ray_library,
        deepcr_detector,
        injection_recovery,
    )

    inj.register_libraries()
    header = "| frame | library | CRs | flags ref. / cand. | recall ref. | recall cand. | b/c p | b/c p < 1k e- |"
    header += " cand. threshold |" if equal_flags else ""
    lines = [header, "|" + "---|" * header.count(" |")]
    for name, frame in inj.installed_frames(inj.LOADERS if frames is None else frames, file=sys.stderr):
        bad, saturated, _ = _frame_setup(frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the out-of-domain alarm: measured here, not a failure
            specs = {"reference": choose_model(frame["header"], model=reference)[0],
                     "candidate": choose_model(frame["header"], model=candidate)[0]}
        settings = {"dq": frame.get("dq"), "satlevel": frame.get("satlevel")}
        detectors = {key: deepcr_detector(spec, **settings) for key, spec in specs.items()}
        if star_shape:
            detectors["candidate"] = deepcr_detector(specs["candidate"], star_shape=True, readnoise=frame["readnoise"],
                                                     **settings)
        match = None
        if equal_flags:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                target = int(detectors["reference"](frame["electrons"]).sum())
            match = match_deepcr_flags(frame["electrons"], target, specs["candidate"], **settings)
            detectors["candidate"] = deepcr_detector(specs["candidate"], threshold=match.threshold, **settings)
        for library in libraries:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results = injection_recovery(frame["electrons"], detectors, library=cosmic_ray_library(library),
                                             density=density, seed=seed, n_trials=inj.trials_for(frame, density),
                                             bad=bad, saturated=saturated)
            rates = results["detectors"]
            tests = [compare_detectors(results, "candidate", "reference", *limit) for limit in ((), (1000.0,))]
            lines.append(f"| {name} | {library} | {results['n_injected']} | {rates['reference']['flags_original']} / "
                         f"{rates['candidate']['flags_original']} | {rates['reference']['object_recall_new']:.3f} | "
                         f"{rates['candidate']['object_recall_new']:.3f} | "
                         + " | ".join(f"{t['b']}/{t['c']} p={t['p']:.2g}" for t in tests) + " |"
                         + ("" if match is None else f" {match.label()} |"))
    return lines


def validation_lines(models, n_frames, mix, hrc_library=True):
    """`negatives_report` of each model (name -> zoo name or path) on the validation frames of ``mix`` (and of
    the HRC library's cosmic rays unless ``hrc_library`` is False)."""
    from astro_deepcr.detection import choose_model
    from astro_deepcr.training.ground_train import model_probability, negatives_report, validation_frames

    frames = validation_frames(n_frames, crop=256, seed=0, mix=mix, hrc_library=hrc_library)
    kinds = {"all": frames, "imaging": [f for f in frames if f["params"]["kind"] == "imaging"],
             "long-slit": [f for f in frames if f["params"]["kind"] == "long-slit"]}
    lines = ["| model | frames | kind | TPR | FPR | false flags | LACosmic false flags |", "|" + "---|" * 7]
    for label, model in models.items():
        spec = choose_model(None, model=model)[0]
        for kind, subset in kinds.items():
            if subset:
                report = negatives_report(model_probability(spec), subset, spec.threshold)
                lines.append(f"| {label} | {report['frames']} | {kind} | {report['tpr']:.4f} | {report['fpr']:.3g} | "
                             f"{report['model_false_flags']} | {report['lacosmic_false_flags']} |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("candidate", help="zoo name or .safetensors path (with its card)")
    parser.add_argument("--reference", default="ground", help="zoo name or path (default ground)")
    parser.add_argument("--frames", nargs="+", help="real frames (default: every installed one of "
                        "injection_frames.LOADERS)")
    parser.add_argument("--libraries", nargs="+", default=["wfpc2", "thin-ccd"],
                        help="cosmic-ray libraries (%(default)s; any of injection_frames.py's, e.g. kpno)")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--equal-flags", action="store_true",
                        help="the candidate at the threshold that gives the reference's flag count on each "
                             "uninjected frame: what the two networks tell apart, calibration aside")
    parser.add_argument("--star-shape", action="store_true",
                        help="the candidate with the star-shape test (astro_deepcr.starshape)")
    parser.add_argument("--validation", type=int, default=0, metavar="N", help="also N simulated validation frames")
    add_mix_arguments(parser)  # the validation frames' mix, as train-ground's options give it
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print("\n".join(paired_lines(args.candidate, args.reference, args.frames, args.libraries, args.seed,
                                  equal_flags=args.equal_flags, star_shape=args.star_shape)))
    if args.validation:
        from astro_deepcr.training.ground_train import GroundConfig

        config = GroundConfig(**mix_from_args(args))
        print(f"\nSimulated validation frames ({config.mix()}):\n")
        print("\n".join(validation_lines({"reference": args.reference, "candidate": args.candidate},
                                          args.validation, config.mix(), config.hrc_library)))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
