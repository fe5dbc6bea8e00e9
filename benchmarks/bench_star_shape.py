#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
What the star-shape test (`astro_deepcr.starshape`, ``detect(star_shape=True)``) costs beside the network.

On the ACS/HRC frame (spherical_geometry's ``j8bt06nyq_flt.fits``, ``ground``, float32): `detect` without and
with the test, ``--repeat`` times alternated, the ratio measured in the same run; then the test alone on the
frame tiled ``--tiles`` x ``--tiles`` (4: 4096 x 4096 px), its time and peak traced memory. Also how its flags
fall on the HRC frame's isolated stars (`star_lines`), and the PSF fit's time against finite differences
(`psf_fit_line`). ::

    python benchmarks/bench_star_shape.py [--threads 2] [--repeat 2] [--tiles 4]
"""

import argparse
import time
import tracemalloc
import warnings

import numpy as np


def star_lines(science, plain, readnoise=4.71):
    """How the test's flags fall on the uninjected frame's isolated stars: stars with a flag, and stamps centred
    on a flagged pixel (a cosmic ray or a star peak brighter than its star's shape allows)."""
    from astro_deepcr import starshape

    unusable = starshape.unusable_pixels(plain.bad, plain.saturated)
    mask, star_map = starshape.star_shape_mask(science, readnoise=readnoise, unusable=unusable)
    sky, noise = starshape.sky_and_noise(science, unusable, readnoise)
    rows, cols = starshape.find_stars(np.asarray(science, np.float64) - sky, noise, unusable, star_map.half)
    flagged = mask[starshape.stamp_pixels(rows, cols, star_map.half)]
    centred = mask[rows, cols]
    return (f"HRC: the test flags {int(mask.sum())} px; {int(flagged.any(axis=1).sum())} of the {len(rows)} "
            f"isolated stars tested hold some in their stamp ({flagged.sum(axis=1)[flagged.any(axis=1)].mean():.1f} "
            f"px each); {int(centred.sum())} stamps centred on a flagged pixel hold {int(flagged[centred].sum())}")


def psf_fit_line(science, unusable, readnoise=4.71, repeat=2):
    """`~astro_deepcr.starpsf.measure_psf` on the frame as the test calls it (most of the test's cost) with its
    analytic Jacobian and, as the reference in the same run, with scipy's finite differences (``least_squares``
    called without ``jac``: the fit as it was before session 43), alternated; the fastest of ``repeat`` each."""
    from unittest import mock

    from scipy import optimize

    from astro_deepcr.starpsf import measure_psf

    least_squares = optimize.least_squares

    def finite_differences(*args, jac=None, **kwargs):
        return least_squares(*args, **kwargs)

    times, found = {"analytic": [], "finite differences": []}, {}
    for _ in range(repeat):
        for label in times:
            with mock.patch.object(optimize, "least_squares", finite_differences if label != "analytic" else
                                   least_squares):
                start = time.perf_counter()
                psf = measure_psf(science, readnoise, bad=unusable)
                times[label].append(time.perf_counter() - start)
            found[label] = psf
    analytic, reference = min(times["analytic"]), min(times["finite differences"])
    one, other = found["analytic"], found["finite differences"]
    same = ("the same PSF" if (one.sharpness, one.n_stars) == (other.sharpness, other.n_stars)
            and abs(one.fwhm - other.fwhm) < 1e-5 * one.fwhm else f"PSFs {found}")
    return (f"HRC: measure_psf {analytic:.2f} s with the analytic Jacobian, {reference:.2f} s with finite "
            f"differences (x {reference / analytic:.2f}); {same} (FWHM {psf.fwhm:.3f} px, {psf.n_stars} stars)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tiles", type=int, default=4)
    args = parser.parse_args(argv)
    from astropy.io import fits

    from astro_deepcr import starshape
    from astro_deepcr.datasets import hst_example_path
    from astro_deepcr.detection import detect

    with fits.open(hst_example_path()) as hdul:
        science = hdul["SCI", 1].data.astype(np.float32)
        dq = hdul["DQ", 1].data.astype(np.int64)
    settings = dict(spec="ground", dq=dq, progress=False, precision="float32", threads=args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = detect(science, **settings)  # warm: the network loaded once
        for _ in range(args.repeat):
            start = time.perf_counter()
            plain = detect(science, **settings)
            middle = time.perf_counter()
            shaped = detect(science, star_shape=True, readnoise=4.71, **settings)
            end = time.perf_counter()
            print(f"HRC 1024 x 1024: detect {middle - start:.2f} s, with the star-shape test {end - middle:.2f} s "
                  f"(x {(end - middle) / (middle - start):.1f}); {shaped.star_shape}")
    print(star_lines(science, plain))
    print(psf_fit_line(science, starshape.unusable_pixels(plain.bad, plain.saturated), repeat=args.repeat))
    tiles = (args.tiles, args.tiles)
    image = np.tile(science, tiles)
    unusable = starshape.unusable_pixels(np.tile(plain.bad, tiles), np.tile(plain.saturated, tiles))
    tracemalloc.start()
    start = time.perf_counter()
    mask, star_map = starshape.star_shape_mask(image, readnoise=4.71, unusable=unusable)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{image.shape[0]} x {image.shape[1]} px (the frame tiled): the test alone {elapsed:.1f} s, peak traced "
          f"memory {peak / 2**20:.0f} MiB; map of {star_map.n_learnt + star_map.n_held_out} stars, "
          f"{int(mask.sum())} px")


if __name__ == "__main__":
    main()
