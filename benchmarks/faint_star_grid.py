#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Faint stars against faint cosmic rays, by seeing and sky: the default detector and LACosmic on simulated star fields.

The real ground frames of the evaluation (SAAO, GMOS-S, KPNO) have skies of at most a few hundred electrons
and stars of 2.5 px FWHM or more. This grid asks what they cannot: per cell of FWHM (px) and sky (e-), a
512 x 512 px star field (Moffat ``beta`` 3, 1e-3 stars per px, fluxes ``N(>F) ~ F**-0.7`` from 300 e- to
1e6 e-, read noise 5 e-, Poisson noise; drawn fresh, never a training frame, though from a simulator like the
training one), and on it

* `astro_deepcr.evaluation.frames.run_frame`: a library's real cosmic rays injected, recall by new flags of
  the default detector, LACosmic at its defaults and at equal flags, with the paired exact test;
* `astro_deepcr.evaluation.frames.run_placebo` with the cell's own PSF: faint point sources with the same
  charges, what each detector flags of them (faint stars it would mask), and the paired test that the
  default flags *more* of them than LACosmic at its defaults.

``--reference MODEL`` also runs each cell with that model as the default, on the same frames and injections, and
pairs the two: cosmic rays only ``--model`` / only the reference finds (p that ``--model`` recalls fewer), and
placebos only ``--model`` / only the reference flags (p that ``--model`` flags more). ``--threshold`` runs
``--model`` at another threshold than its card's (what raising it buys on faint stars, and costs). ::

    python benchmarks/faint_star_grid.py [--fwhm 1.8 2.7 4.0] [--sky 50 344 3000] [--libraries kpno wfpc2]
        [--model NAME] [--threshold T] [--reference NAME] [--seed 22] [--trials 4]
"""

import argparse
import pathlib
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))

SHAPE = (512, 512)
BETA = 3.0
READNOISE = 5.0
STAR_DENSITY = 1e-3  # per px
STAR_FLUX = (300.0, 1e6)  # e-, power law N(>F) ~ F**-STAR_SLOPE
STAR_SLOPE = 0.7


def star_field(fwhm, sky, seed, shape=SHAPE):
    """A simulated frame (dict for `run_frame`): a star field of the given FWHM on a flat sky, in electrons."""
    from astro_deepcr.training.ground import moffat_psf, star_stamp_size

    rng = np.random.default_rng(seed)
    size = star_stamp_size(fwhm)
    expected = np.full(shape, float(sky))
    low, high = (flux ** -STAR_SLOPE for flux in STAR_FLUX)
    n_stars = rng.poisson(STAR_DENSITY * shape[0] * shape[1])
    for flux in (low - rng.random(n_stars) * (low - high)) ** (-1.0 / STAR_SLOPE):
        y, x = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        iy, ix = int(y), int(x)
        stamp = flux * moffat_psf(fwhm, BETA, size, offset=(y - iy - 0.5, x - ix - 0.5))
        y0, x0 = iy - size // 2, ix - size // 2
        ys, xs = max(y0, 0), max(x0, 0)
        ye, xe = min(y0 + size, shape[0]), min(x0 + size, shape[1])
        expected[ys:ye, xs:xe] += stamp[ys - y0:ye - y0, xs - x0:xe - x0]
    electrons = rng.poisson(expected).astype(np.float64) + rng.normal(0.0, READNOISE, shape)
    return {"name": f"fwhm {fwhm:g} sky {sky:g}", "electrons": electrons, "readnoise": READNOISE, "dq": None,
            "satlevel": None, "header": None}


def cell(fwhm, sky, library, args, model=None, threshold=None):
    """``(cosmic-ray results, placebo results)`` of one cell and library (``model``: default ``args.model``;
    ``threshold``: instead of its card's)."""
    from injection_frames import at_threshold

    from astro_deepcr.detection import choose_model
    from astro_deepcr.evaluation.frames import run_frame, run_placebo
    from astro_deepcr.starpsf import StarPSF

    frame = star_field(fwhm, sky, args.seed)
    psf = StarPSF(fwhm=float(fwhm), beta=BETA, sharpness=0.0, n_stars=0, source="given")
    model = model or args.model
    if threshold is not None:
        spec, _ = choose_model(None, model=model)
        model = at_threshold(spec, threshold)
    common = dict(model=model, library=library, seed=args.seed, n_trials=args.trials)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crs = run_frame(frame, **common)
        placebos = run_placebo(frame, psf=psf, flag_match=crs["flag_match"], **common)
    return crs, placebos


def grid_lines(pairs):
    """Markdown table: per cell and library, cosmic rays recalled / placebos flagged by the default, LACosmic at its
    defaults and at equal flags; the paired tests (CRs: that the default recalls fewer than LACosmic at its
    defaults; placebos: that it flags more)."""
    from astro_deepcr.evaluation.frames import LACOSMIC_DEFAULT, placebo_test

    lines = ["| cell | library | flags default / LA | CRs / placebos | default | LA defaults | LA equal flags "
             "| CRs b/c p (fewer) | placebos b/c p (more) |", "|" + "---|" * 9]
    for crs, placebos in pairs:
        default = crs["default"]
        names = [default, LACOSMIC_DEFAULT, *(name for name in crs["detectors"] if name not in
                                              (default, LACOSMIC_DEFAULT))]
        rates = [f"{crs['detectors'][name]['object_recall_new']:.3f} / "
                 f"{placebos['detectors'][name]['object_recall_new']:.3f}" for name in names[:3]]
        test_crs = crs["significance"][LACOSMIC_DEFAULT]["all"]
        test_placebos = placebo_test(placebos, default)
        flags = [crs["detectors"][name]["flags_original"] for name in names[:2]]
        lines.append(f"| {crs['name']} | {crs['library']} | {flags[0]} / {flags[1]} | {crs['n_injected']} / "
                     f"{placebos['n_injected']} | " + " | ".join(rates) + f" | {test_crs['b']}/{test_crs['c']} "
                     f"p={test_crs['p']:.2g} | {test_placebos['b']}/{test_placebos['c']} p={test_placebos['p']:.2g} |")
    return lines


def paired_lines(pairs, references):
    """Markdown table: the model against the reference in each cell (the same frames and injections), cosmic rays
    recalled / placebos flagged by each, and the paired tests (CRs: the model recalls fewer; placebos: it flags
    more)."""
    from astro_deepcr.evaluation.significance import discordant_test

    lines = ["| cell | library | model | reference | CRs b/c p (fewer) | placebos b/c p (more) |", "|" + "---|" * 6]
    for (crs, placebos), (ref_crs, ref_placebos) in zip(pairs, references):
        cells = []
        for run, ref in ((crs, ref_crs), (placebos, ref_placebos)):
            if not np.array_equal(run["per_cr"]["charge"], ref["per_cr"]["charge"]):
                raise RuntimeError(f"{crs['name']}: the two runs injected different cosmic rays")
            cells.append((run["per_cr"]["found_new"][run["default"]], ref["per_cr"]["found_new"][ref["default"]]))
        test_crs = discordant_test(*cells[0])
        test_placebos = discordant_test(cells[1][1], cells[1][0])
        rates = [f"{run['detectors'][run['default']]['object_recall_new']:.3f} / "
                 f"{other['detectors'][other['default']]['object_recall_new']:.3f}"
                 for run, other in ((crs, placebos), (ref_crs, ref_placebos))]
        lines.append(f"| {crs['name']} | {crs['library']} | {rates[0]} | {rates[1]} | {test_crs['b']}/{test_crs['c']} "
                     f"p={test_crs['p']:.2g} | {test_placebos['c']}/{test_placebos['b']} p={test_placebos['p']:.2g} |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--fwhm", type=float, nargs="+", default=[1.8, 2.7, 4.0])
    parser.add_argument("--sky", type=float, nargs="+", default=[50.0, 344.0, 3000.0])
    parser.add_argument("--libraries", nargs="+", default=["kpno", "wfpc2"])
    parser.add_argument("--model", help="score this model (zoo name or .safetensors path) as the default")
    parser.add_argument("--threshold", type=float, help="the model at this threshold instead of its card's")
    parser.add_argument("--reference", help="also pair the model against this one, cell by cell (at its card's "
                        "threshold)")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--trials", type=int, default=4, help="injections per cell (500 cosmic rays per Mpx each)")
    args = parser.parse_args(argv)
    from injection_frames import available_libraries, register_libraries

    start = time.perf_counter()
    register_libraries()
    libraries = available_libraries(args.libraries)
    pairs, references = [], []
    for fwhm in args.fwhm:
        for sky in args.sky:
            for library in libraries:
                pairs.append(cell(fwhm, sky, library, args, threshold=args.threshold))
                if args.reference:
                    references.append(cell(fwhm, sky, library, args, model=args.reference))
                print(f"  fwhm {fwhm:g} sky {sky:g} {library} ({time.perf_counter() - start:.0f} s)", flush=True)
    print("\nCosmic rays recalled / placebos flagged (recall by new flags):\n")
    print("\n".join(grid_lines(pairs)))
    if references:
        print(f"\nPaired against {args.reference} (cosmic rays recalled / placebos flagged):\n")
        print("\n".join(paired_lines(pairs, references)))
        print(f"\n{args.reference} against LACosmic:\n")
        print("\n".join(grid_lines(references)))
    print(f"\n{time.perf_counter() - start:.0f} s")
    return pairs


if __name__ == "__main__":
    main()
