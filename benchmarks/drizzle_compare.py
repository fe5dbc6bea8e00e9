# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
deepCR vs AstroDrizzle's driz_cr on synthetic ACS/WFC-like _flc stacks.

Prints, for one simulated field (3 dithered exposures, 2 chips each):

* flag recall / false-positive rate on the injected CRs: deepCR
  (`flag_cosmic_rays`, per exposure) and driz_cr (its ``_crmask`` files from
  a classic 3-exposure AstroDrizzle run), counted over pixels not bad in DQ;
* agreement of deepCR's masks with driz_cr's (driz_cr as reference);
* residuals of the final ``_drc_sci`` at output pixels hit by injected CRs,
  against a drizzle of the CR-free truth with the same settings, for
  deepCR on 1 and 3 exposures, driz_cr on 3 and no CR rejection.

With ``--fill-bits``, it instead compares two ``fill_bits`` choices of
`flag_cosmic_rays` on the same stack: the default (`astro_deepcr.dq.DEFAULT_FILL_BITS`: only
corrupted / fill / bad-detector pixels are the network's
``inmask``) and ``"~4096,8192"`` (every pixel that ``bits`` calls bad,
saturation and hot pixels included, is filled before detection).

With ``--sky``, it instead prints the sky AstroDrizzle measures (``MDRIZSKY``,
skysub on) without and with the deepCR flags in DQ beforehand
(`astro_deepcr.evaluation.drizzle_compare.sky_before_after`), on the real
ACS/HRC frame (`astro_deepcr.datasets.hst_example_path`, model ``ACS-WFC``)
and on the synthetic stack.

Usage::

    python benchmarks/drizzle_compare.py [--shape 256 512] [--seed 1] [--workdir DIR] [--fill-bits | --sky]

Everything runs offline on generated files; nothing is tuned (simulator and
AstroDrizzle defaults, deepCR model and threshold from the headers).
"""

import argparse
import os
import shutil
import tempfile
import warnings

import numpy as np
from astropy.io import fits

from astro_deepcr.dq import DEFAULT_FILL_BITS
from astro_deepcr.drizzle import flag_cosmic_rays
from astro_deepcr.evaluation.drizzle_compare import compare_cr_rejection, sky_before_after
from astro_deepcr.evaluation.metrics import mask_scores
from astro_deepcr.training.flc import write_flc_stack

FILL_CHOICES = ((DEFAULT_FILL_BITS, "default fill_bits"), ("~4096,8192", "fill every pixel bits calls bad"))


def compare_fill_bits(workdir, shape, seed):
    """Recall / FPR / precision on the injected CRs (pixels good in DQ) for each of `FILL_CHOICES`."""
    stack = write_flc_stack(os.path.join(workdir, "data"), 3, chip_shape=shape, seed=seed)
    lines = [f"{'fill_bits':<44} recall    FPR        precision  flagged px"]
    for index, (fill_bits, label) in enumerate(FILL_CHOICES):
        directory = os.path.join(workdir, f"fill{index}")
        os.makedirs(directory)
        files = [shutil.copy(path, directory) for path in stack.files]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flag_cosmic_rays(files, fill_bits=fill_bits, progress=False)
        found, truth, valid = [], [], []
        for i, path in enumerate(files):
            for k in (1, 2):
                found.append((fits.getdata(path, ("DQ", k)).astype(np.int64) & 4096).ravel() > 0)
                truth.append(stack.cr_masks[i][k - 1].ravel())
                valid.append((stack.dq[i][k - 1].astype(np.int64) & ~(4096 | 8192)).ravel() == 0)
        found = np.concatenate(found)
        recall, fpr, precision = mask_scores(found, np.concatenate(truth), np.concatenate(valid))
        lines.append(f"{fill_bits:<11} {label:<32} {recall:7.4f}  {fpr:9.2e}  {precision:7.4f}  "
                     f"{int(found.sum()):8d}")
    return "\n".join(lines)


def compare_sky(workdir, shape, seed):
    """MDRIZSKY before / after on the real HRC frame and on the synthetic stack."""
    from astro_deepcr.datasets import hst_example_path

    lines = [f"{'file':<24} chip  MDRIZSKY before   after      change   CR px flagged   CR-free truth"]
    runs = []
    try:
        runs.append(("hrc", [hst_example_path()], {"model": "ACS-WFC"}))
    except FileNotFoundError as exc:
        print(f"no HRC frame: {exc}")
    stack = write_flc_stack(os.path.join(workdir, "data"), 3, chip_shape=shape, seed=seed)
    runs.append(("stack", stack.files, {}))
    for label, files, params in runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = sky_before_after(files, os.path.join(workdir, label), **params)
            # the synthetic stack's CR-free copies, drizzled the "before" way: the sky without any cosmic ray
            truth = ([row[2] for row in sky_before_after(stack.truth_files, os.path.join(workdir, "truth"))]
                     if label == "stack" else [float("nan")] * len(rows))
        for (name, extver, before, after, n_cr), clean in zip(rows, truth, strict=True):
            lines.append(f"{name:<24} {extver:4d}  {before:14.4f}  {after:10.4f}  {after - before:+9.4f}  {n_cr:8d}"
                         f"        {clean:10.4f}")
    return "\n".join(lines)


def report(results):
    lines = [f"injected CR pixels (truth, all chips): {results['n_cr_pixels']}",
             "flagging on the injected truth (pixels not bad in DQ):",
             "  method            recall    FPR        precision"]
    for key, label in (("deepcr_flag", "deepCR (1 exp each)"), ("drizcr_flag", "driz_cr (3-exp stack)")):
        recall, fpr, precision = results[key]
        lines.append(f"  {label:<22} {recall:7.4f}  {fpr:9.2e}  {precision:7.4f}")
    recall, _, precision = results["agreement_vs_drizcr"]
    lines.append(f"deepCR vs driz_cr masks (driz_cr as reference): recall {recall:.4f}, precision {precision:.4f}")
    share, area = results["fp_near_bright"]
    lines.append(f"deepCR false positives within 2 px of sources > 1000 e- above sky: {share:.1%} "
                 f"(those regions cover {area:.1%} of the pixels)")
    lines.append("final _drc_sci residual at output pixels hit by injected CRs, vs drizzled CR-free truth "
                 "(drc units, e-/s):")
    lines.append("  run            n      rms        mean|r|    p99|r|     max|r|     no-data fraction")
    for key, value in results["residual"].items():
        lines.append(f"  {key:<13} {value['n']:5d}  {value['rms']:9.4f}  {value['mean_abs']:9.4f}  "
                     f"{value['p99_abs']:9.4f}  {value['max_abs']:9.4f}  {value['no_data']:.3f}")
    lines.append("same, at all other output pixels (cost of false positives, e.g. star cores):")
    for key, value in results["residual_elsewhere"].items():
        lines.append(f"  {key:<13} {value['n']:5d}  {value['rms']:9.4f}  {value['mean_abs']:9.4f}  "
                     f"{value['p99_abs']:9.4f}  {value['max_abs']:9.4f}  {value['no_data']:.3f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=2, default=(256, 512), help="chip shape (ny nx)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", default=None, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--fill-bits", action="store_true", help="compare fill_bits choices instead")
    parser.add_argument("--sky", action="store_true", help="MDRIZSKY without / with the deepCR flags instead")
    args = parser.parse_args(argv)

    def run(workdir):
        if args.fill_bits:
            return compare_fill_bits(workdir, tuple(args.shape), args.seed)
        if args.sky:
            return compare_sky(workdir, tuple(args.shape), args.seed)
        return report(compare_cr_rejection(workdir, tuple(args.shape), args.seed))

    if args.workdir:
        print(run(args.workdir))
    else:
        with tempfile.TemporaryDirectory() as workdir:
            print(run(workdir))


if __name__ == "__main__":
    main()
