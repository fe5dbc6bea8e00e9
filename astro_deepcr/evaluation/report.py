# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
`evaluate`: the paper's evaluation on a simulated (or your own) test set, in
one run, written as a Markdown report with PNG plots.

Detection: on synthetic CR tracks and on real CR shapes harvested from an
ACS/HRC exposure (``cr_sources``), ROC curves, TPR at FPR 0.05 % and 0.5 % and dilated TPR for each
deepCR model, against LACosmic (astroscrappy, the paper's objlim per field
and a sweep of sigclip) and, when installed, the reference ``deepCR``
package. Inpainting: MSE over the true CR pixels for medmask, biharmonic and
the deepCR-inpaint models. Runtime per megapixel for every method.
``evaluate --inject FILE ...`` (injection-recovery on your own frames) is run
by `astro_deepcr.evaluation.inject_cli`.
"""

import json
import time
import warnings
from pathlib import Path

import numpy as np

from ..commands.options import UsageError, positive_float, positive_int
from .inject_cli import add_inject_options, jsonable

__all__ = ["make_test_set", "evaluate", "add_subparser", "CR_SOURCES"]

#: FPR values of the paper's TPR table.
FPR_TARGETS = (0.0005, 0.005)
#: LACosmic objlim per field, as in Zhang & Bloom 2020.
OBJLIM = {"extragalactic": 2.0, "globular": 3.5, "resolved": 5.0}
#: CR sources of the simulated test sets: synthetic tracks and real shapes harvested from an ACS/HRC exposure.
CR_SOURCES = ("synthetic", "harvested")
SIGCLIPS = (2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 10.0, 13.0, 16.0, 20.0, 30.0, 50.0)


def make_test_set(fields=tuple(OBJLIM), n_images=2, size=512, exptime=500.0, sky=60.0, read_noise=4.0, seed=100,
                  cr_source="synthetic"):
    """Simulated exposures (`astro_deepcr.training.simulate.simulate_exposure`) per field.

    ``cr_source``: ``"synthetic"`` tracks, or ``"harvested"`` real CR shapes
    (`astro_deepcr.training.crlibrary.harvest_cosmic_rays` on the ACS/HRC
    example exposure). The same seed gives the same scenes for both sources.
    """
    from ..training.simulate import harvest_cosmic_rays, simulate_exposure

    if cr_source not in CR_SOURCES:
        raise ValueError(f"cr_source must be one of {CR_SOURCES}, not {cr_source!r}")
    library = harvest_cosmic_rays() if cr_source == "harvested" else None
    rng = np.random.default_rng(seed)
    return [dict(simulate_exposure((size, size), field, exptime=exptime, sky=sky, read_noise=read_noise,
                                   seed=int(rng.integers(2**31)), library=library),
                 field=field, cr_source=cr_source)
            for field in fields for _ in range(n_images)]


def _lacosmic(image, objlim, sigclip, read_noise):
    import astroscrappy

    mask, _ = astroscrappy.detect_cosmics(image, sigclip=sigclip, objlim=objlim, gain=1.0, readnoise=read_noise,
                                          satlevel=np.inf, verbose=False)
    return mask


def _reference_probability(image, model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import deepCR
    return deepCR.deepCR(mask=model, device="CPU").clean(image, binary=False, segment=True, patch=1024)


def _have_reference():
    import importlib.util

    return importlib.util.find_spec("deepCR") is not None


def _detection(test_set, models, reference):
    from ..deepcr import DeepCR
    from ..zoo import get_model
    from .metrics import dilated_tpr, mask_scores, roc_curve, tpr_at_fpr

    results = {}
    for field in dict.fromkeys(item["field"] for item in test_set):
        items = [item for item in test_set if item["field"] == field]
        truth = np.stack([item["cr_mask"] for item in items])
        rows = {}
        scores = {}
        for name in models:
            model = DeepCR(name, device="cpu", progress=False)
            scores[name] = np.stack([model.probability(item["image"]) for item in items])
        if reference:
            scores["deepCR 0.3.1 (reference, patch 1024) ACS-WFC"] = np.stack(
                [_reference_probability(item["image"], "ACS-WFC") for item in items])
        for name, score in scores.items():
            fpr, tpr, thresholds = roc_curve(score, truth)
            _, dtpr, _ = roc_curve(score, truth, thresholds=thresholds, dilate=True)
            row = {"roc": (fpr, tpr)}
            for target in FPR_TARGETS:
                value, threshold = tpr_at_fpr(fpr, tpr, target, thresholds)
                row[f"tpr@{target:g}"] = value
                row[f"threshold@{target:g}"] = threshold
                row[f"dilated_tpr@{target:g}"] = float(dtpr[np.flatnonzero(thresholds == threshold)[0]]) \
                    if np.isfinite(threshold) else np.nan
            spec = get_model(name) if name in models else None
            if spec is not None:
                default = spec.threshold if spec.threshold is not None else 0.5
                predicted = score > default
                row["default_threshold"] = default
                row["tpr@default"], row["fpr@default"], _ = mask_scores(predicted, truth)
                row["dilated_tpr@default"] = dilated_tpr(predicted, truth)
            rows[name] = row
        points = []
        for sigclip in SIGCLIPS:
            found = np.stack([_lacosmic(item["image"], OBJLIM.get(field, 5.0), sigclip, item["read_noise"])
                              for item in items])
            recall, fpr, _ = mask_scores(found, truth)
            points.append((fpr, recall, dilated_tpr(found, truth)))
        fpr, tpr, dtpr = (np.array(values) for values in zip(*points))
        row = {"roc": (fpr, tpr)}
        for target in FPR_TARGETS:
            value, sigclip = tpr_at_fpr(fpr, tpr, target, SIGCLIPS)
            row[f"tpr@{target:g}"] = value
            row[f"threshold@{target:g}"] = sigclip
            row[f"dilated_tpr@{target:g}"] = float(dtpr[SIGCLIPS.index(sigclip)]) if np.isfinite(sigclip) else np.nan
        rows[f"LACosmic (objlim {OBJLIM.get(field, 5.0):g})"] = row
        results[field] = rows
    return results


def _inpainting(test_set, inpaint_models):
    from ..deepcr import DeepCR
    from .metrics import inpaint_mse

    model = DeepCR("ACS-WFC", device="cpu", progress=False)
    methods = ["medmask", "biharmonic", *inpaint_models]
    results = {}
    for field in dict.fromkeys(item["field"] for item in test_set):
        items = [item for item in test_set if item["field"] == field]
        results[field] = {}
        for method in methods:
            errors = [inpaint_mse(model.inpaint(item["image"], item["cr_mask"], method=method), item["clean"],
                                  item["cr_mask"]) for item in items]
            results[field][method] = float(np.mean(errors))
    return results


def _runtime(models, inpaint_models, reference, size=1024, repeat=1):
    from ..deepcr import DeepCR
    from ..training.simulate import simulate_exposure

    sim = simulate_exposure((size, size), "extragalactic", seed=7)
    image, mask = sim["image"], sim["cr_mask"]
    megapixels = image.size / 1e6
    timings = {}

    def timed(label, function):
        function()  # warm-up: load networks, caches
        start = time.perf_counter()
        for _ in range(repeat):
            function()
        timings[label] = (time.perf_counter() - start) / repeat / megapixels

    for name in models:
        model = DeepCR(name, device="cpu", progress=False)
        timed(f"mask {name}", lambda m=model: m.mask(image))
    timed("LACosmic (sigclip 4.5)", lambda: _lacosmic(image, 2.0, 4.5, 4.0))
    if reference:
        timed("deepCR 0.3.1 ACS-WFC (patch 1024)", lambda: _reference_probability(image, "ACS-WFC"))
    model = DeepCR("ACS-WFC", device="cpu", progress=False)
    for method in ["medmask", "biharmonic", *inpaint_models]:
        timed(f"inpaint {method}", lambda m=method: model.inpaint(image, mask, method=m))
    import torch

    if torch.cuda.is_available():
        for name in models:
            gpu = DeepCR(name, device="cuda", progress=False)
            timed(f"mask {name} (GPU)", lambda m=gpu: m.mask(image))
    return timings


def evaluate(out, models=("ACS-WFC", "ACS-WFC-F606W", "ACS-WFC-F606W-2-4"),
             inpaint_models=("ACS-WFC-F606W-2-32", "ACS-WFC-F606W-3-32"), fields=tuple(OBJLIM), n_images=2,
             size=512, exptime=500.0, seed=100, reference=None, test_set=None, runtime_size=1024,
             cr_sources=CR_SOURCES):
    """Run the evaluation and write ``report.md``, ``results.json`` and PNG plots to ``out``.

    Parameters
    ----------
    out : str or path-like
        Output folder (created).
    models, inpaint_models : sequence of str
        Mask and inpaint models to evaluate.
    fields : sequence of str
        Simulated field types.
    n_images, size, exptime, seed :
        Simulated test set: ``n_images`` of ``size`` x ``size`` per field.
    reference : bool, optional
        Include the reference deepCR package (default: when installed).
    test_set : list of dict, optional
        Your own data instead of the simulation: dicts with ``image``,
        ``clean`` (CR-free), ``cr_mask`` (bool), ``field`` and ``read_noise``.
    cr_sources : sequence of str
        CR sources of the simulated test set (`CR_SOURCES`): the first one
        makes the full report (detection, inpainting, plots); every other
        one adds a detection table on the same scenes (``results
        ["detection_by_cr_source"]``). Ignored with ``test_set``.

    Returns
    -------
    results : dict
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reference = _have_reference() if reference is None else reference
    start = time.perf_counter()
    by_source = {}
    if test_set is None:
        if not cr_sources:
            raise ValueError("cr_sources is empty")
        test_set = make_test_set(fields, n_images, size, exptime, seed=seed, cr_source=cr_sources[0])
        for source in cr_sources[1:]:
            by_source[source] = _detection(make_test_set(fields, n_images, size, exptime, seed=seed,
                                                         cr_source=source), list(models), reference)
    detection = _detection(test_set, list(models), reference)
    if by_source:
        by_source = {cr_sources[0]: detection, **by_source}
    inpainting = _inpainting(test_set, list(inpaint_models))
    runtime = _runtime(list(models), list(inpaint_models), reference, size=runtime_size)
    from . import plots

    plots.roc(detection, out / "roc.png")
    plots.gallery(test_set, models[0], inpaint_models[0] if inpaint_models else "medmask", out / "gallery.png")
    plots.runtime(runtime, out / "runtime.png")
    results = {"detection": detection, "detection_by_cr_source": by_source, "inpainting": inpainting,
               "runtime_s_per_megapixel": runtime,
               "test_set": {"fields": list(dict.fromkeys(item["field"] for item in test_set)),
                            "n_images": len(test_set), "shape": list(test_set[0]["image"].shape),
                            "exptime": exptime, "seed": seed,
                            "cr_source": test_set[0].get("cr_source", "your own")},
               "elapsed_s": time.perf_counter() - start}
    (out / "report.md").write_text(_markdown(results))
    (out / "results.json").write_text(json.dumps(jsonable(results), indent=2))
    return results


def _fmt(value, spec=".4f"):
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


def _markdown(results):
    test = results["test_set"]
    lines = ["# astro_deepcr evaluation", "",
             f"Test set: {test['n_images']} simulated exposures of {test['shape'][0]}x{test['shape'][1]} px "
             f"({', '.join(test['fields'])}; exptime {test['exptime']:g} s, seed {test['seed']}; "
             f"CRs: {test.get('cr_source', 'synthetic')}; "
             "astro_deepcr.training.simulate). Run time {:.0f} s.".format(results["elapsed_s"]), "",
             "## Detection: TPR at fixed FPR", "",
             "Threshold / sigclip chosen per method so that FPR <= the target (no interpolation). "
             "Dilated TPR: a CR pixel counts as found when the 3x3-dilated prediction covers it.", "",
             "| field | method | TPR@0.05% | dilated | TPR@0.5% | dilated | thr@0.5% |",
             "|---|---|---|---|---|---|---|"]
    for field, rows in results["detection"].items():
        for name, row in rows.items():
            lines.append(f"| {field} | {name} | {_fmt(row['tpr@0.0005'])} | {_fmt(row['dilated_tpr@0.0005'])} | "
                         f"{_fmt(row['tpr@0.005'])} | {_fmt(row['dilated_tpr@0.005'])} | "
                         f"{_fmt(row['threshold@0.005'], '.3g')} |")
    lines += ["", "At each model's default threshold:", "", "| field | model | threshold | TPR | FPR | dilated TPR |",
              "|---|---|---|---|---|---|"]
    for field, rows in results["detection"].items():
        for name, row in rows.items():
            if "tpr@default" in row:
                lines.append(f"| {field} | {name} | {row['default_threshold']:g} | {_fmt(row['tpr@default'])} | "
                             f"{_fmt(row['fpr@default'], '.2e')} | {_fmt(row['dilated_tpr@default'])} |")
    lines += _by_source_markdown(results.get("detection_by_cr_source") or {})
    methods = list(next(iter(results["inpainting"].values())))
    lines += ["", "![ROC](roc.png)", "", "## Inpainting: MSE over the true CR pixels (e-^2)", "",
              "| field | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for field, row in results["inpainting"].items():
        lines.append(f"| {field} | " + " | ".join(_fmt(row[m], ".1f") for m in methods) + " |")
    lines += ["", "![gallery](gallery.png)", "", "## Runtime (CPU unless marked, seconds per megapixel)", "",
              "| method | s / Mpx |", "|---|---|"]
    lines += [f"| {name} | {value:.3f} |" for name, value in results["runtime_s_per_megapixel"].items()]
    lines += ["", "![runtime](runtime.png)", ""]
    return "\n".join(lines)


def _by_source_markdown(by_source):
    """TPR at both FPRs for every CR source side by side (synthetic tracks, harvested real shapes)."""
    if not by_source:
        return []
    sources = list(by_source)
    header = " | ".join(f"TPR@{label} {source}" for label in ("0.05%", "0.5%") for source in sources)
    lines = ["", "## Detection by CR source", "",
             "The same scenes with synthetic CR tracks and with real CR shapes harvested from the ACS/HRC "
             "exposure j8bt06nyq_flt.fits (astro_deepcr.training.crlibrary).", "",
             f"| field | method | {header} |", "|---|---|" + "---|" * (2 * len(sources))]
    first = by_source[sources[0]]
    for field, rows in first.items():
        for name in rows:
            values = [_fmt(by_source[source].get(field, {}).get(name, {}).get(f"tpr@{target:g}", np.nan))
                      for target in FPR_TARGETS for source in sources]
            lines.append(f"| {field} | {name} | " + " | ".join(values) + " |")
    return lines


def add_subparser(subparsers):
    """Register ``astro-deepcr evaluate``."""
    parser = subparsers.add_parser("evaluate", help="ROC, TPR@FPR, inpainting MSE and runtime on a simulated "
                                   "test set; writes a Markdown report with plots")
    parser.add_argument("--out", "-o", default="evaluation", help="output folder (default: %(default)s)")
    parser.add_argument("--models", nargs="+", default=["ACS-WFC", "ACS-WFC-F606W", "ACS-WFC-F606W-2-4"])
    parser.add_argument("--inpaint-models", nargs="*", default=["ACS-WFC-F606W-2-32", "ACS-WFC-F606W-3-32"])
    parser.add_argument("--fields", nargs="+", default=list(OBJLIM), choices=list(OBJLIM))
    parser.add_argument("--n-images", type=positive_int, default=2, help="images per field")
    parser.add_argument("--size", type=positive_int, default=512, help="image side in pixels")
    parser.add_argument("--exptime", type=positive_float, default=500.0, help="seconds (%(default)s)")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--no-reference", action="store_true", help="skip the reference deepCR package")
    parser.add_argument("--quick", action="store_true", help="1 image of 256x256 per field, small runtime image")
    parser.add_argument("--cr-sources", nargs="+", default=list(CR_SOURCES), choices=list(CR_SOURCES),
                        help="CR sources: the first makes the full report, the others add a detection table "
                             "(default: %(default)s)")
    add_inject_options(parser)
    parser.set_defaults(func=_run)
    return parser


def _check_models(args):
    """Unknown models, or a model of the wrong kind, are usage errors (exit 2) before anything runs."""
    from ..zoo import get_model

    try:
        for name in args.models:
            get_model(name, kind="mask")
        for name in args.inpaint_models:
            get_model(name, kind="inpaint")
    except (ValueError, TypeError) as exc:
        raise UsageError(exc) from None


def _run(args):
    if args.inject:
        from .inject_cli import run_inject

        return run_inject(args)
    _check_models(args)
    quick = {"n_images": 1, "size": 256, "runtime_size": 256} if args.quick else {}
    settings = {"n_images": args.n_images, "size": args.size} | quick
    results = evaluate(args.out, models=args.models, inpaint_models=args.inpaint_models, fields=args.fields,
                       exptime=args.exptime, seed=args.seed, reference=False if args.no_reference else None,
                       cr_sources=args.cr_sources, **settings)
    print(f"report written to {Path(args.out) / 'report.md'} ({results['elapsed_s']:.0f} s)")
    return 0
