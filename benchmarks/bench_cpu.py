#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
CPU benchmark, in one run on the same image: the reference deepCR 0.3.1
(``clean(segment=True, patch=1024)``), astro_deepcr at ``precision="float32"``,
astro_deepcr at its default ``precision="auto"`` (both on the default
backend: OpenVINO where installed), the same on the torch backend
(``torch-float32``, ``torch-auto``), and astroscrappy (LACosmic, ``niter=4``).

Each method runs in its own fresh subprocess, so that its time and peak RSS
are its own (in a shared process deepCR 0.3.1 slows by up to 1.8x through
page faults). It prints the CPU kind (torch's CPU capability, native
bfloat16 or not) and the load average before and after, to show whether the
machine was shared. The
image is a simulated ACS/WFC-like frame in electrons (sky 60 e-, read noise
4 e-, 500 s, stars, galaxies and cosmic rays; fixed seed), 2048 x 2048 by
default. Reports wall time (best of ``--repeat`` rounds, each round running
every method once in turn; the networks after one untimed warm-up call), the speed ratio against the
reference measured in the same run, peak RSS, and the fraction of mask pixels
identical to the reference's; unless ``--no-real``, also the agreement of the
float32 and auto masks with the reference on the real ACS/HRC frame
``j8bt06nyq_flt.fits`` (SCI 1, raw pixels) and the CR pixels auto flips against
float32 there::

    python benchmarks/bench_cpu.py                       # 2048 x 2048, ACS-WFC, threshold 0.5
    python benchmarks/bench_cpu.py --shape 2048 4096 --repeat 3 --json result.json
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

METHODS = ("reference", "float32", "auto", "torch-float32", "astroscrappy")
EXTRA_METHODS = ("torch-auto", "bfloat16", "torch-bfloat16")


def make_image(path, shape, seed=2024):
    from astro_deepcr.training.simulate import simulate_exposure

    frame = simulate_exposure(tuple(shape), "extragalactic", exptime=500.0, sky=60.0, read_noise=4.0, seed=seed)
    np.save(path, frame["image"])


def _runner(method, model, threshold, tile):
    """A function image -> (bool mask, precision label)."""
    if method == "reference":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import deepCR

        engine = deepCR.deepCR(mask=model, device="CPU")
        return lambda image: engine.clean(image, threshold=threshold, inpaint=False, segment=True, patch=1024) > 0.5, \
            "float32"
    if method == "astroscrappy":
        import astroscrappy

        def lacosmic(image):
            return astroscrappy.detect_cosmics(image, sigclip=4.5, objlim=5.0, gain=1.0, readnoise=4.0,
                                               satlevel=np.inf, niter=4, verbose=False)[0]

        return lacosmic, "n/a"
    from astro_deepcr import DeepCR, conf

    backend, _, precision = method.rpartition("-")
    conf.backend = backend or "auto"
    engine = DeepCR(model, device="cpu", tile_size=tile, precision=precision, progress=False)
    return lambda image: engine.mask(image, threshold=threshold), engine.precision_used


def _backend_used(method, model, precision):
    """The runtime that ran ``method`` (after the run: the network is in the cache)."""
    if method in ("reference", "astroscrappy"):
        return "torch (deepCR 0.3.1)" if method == "reference" else "n/a"
    from astro_deepcr import engine, zoo

    return engine.backend_label(zoo.load_network(model, device="cpu", precision=precision))


def worker(method, image_path, mask_path, model, threshold, tile, repeat, threads):
    import torch

    if threads:
        torch.set_num_threads(threads)
    image = np.load(image_path)
    run, precision = _runner(method, model, threshold, tile)
    if method not in ("reference", "astroscrappy"):
        run(image[:256, :256])  # untimed warm-up: weights loaded once per process (the one network cache)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        mask = run(image)
        times.append(time.perf_counter() - start)
    np.save(mask_path, mask)
    from astro_deepcr.bench import peak_rss_mib

    peak = peak_rss_mib()  # this process's own peak (ru_maxrss survives exec)
    print(json.dumps({"method": method, "seconds": min(times), "all_seconds": times, "peak_rss_mib": peak,
                      "threads": torch.get_num_threads(), "precision": precision,
                      "backend": _backend_used(method, model, precision)}))


def real_frame_agreement(model, threshold):
    """Masks of the reference, float32 and auto on the real ACS/HRC frame, all three on the same raw
    pixels (deepCR 0.3.1 has no ``inmask``, so none is given to any of them)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from validate_precision import real_frame

    frame = real_frame()
    if frame is None:
        return {"real_frame": "spherical_geometry's j8bt06nyq_flt.fits not installed"}
    image = frame[0]
    masks = {}
    for method in ("reference", "float32", "auto"):  # the default backend, as measured
        masks[method] = _runner(method, model, threshold, None)[0](image)
    return {
        "real_identical_fraction_float32": float((masks["float32"] == masks["reference"]).mean()),
        "real_identical_fraction_auto": float((masks["auto"] == masks["reference"]).mean()),
        "real_cr_pixels_float32": int(masks["float32"].sum()),
        "real_cr_pixels_flipped_auto_vs_float32": int((masks["auto"] != masks["float32"]).sum()),
    }


def sweep(image_path, model, rounds=3):
    """Engine settings at float32, interleaved over ``rounds`` so that load changes hit all alike:
    tile size, batch size, threads, and channels-last against contiguous tensors."""
    import torch

    from astro_deepcr import engine, zoo
    from astro_deepcr.deepcr import DeepCR
    from astro_deepcr.nets import fold_batchnorm

    image = np.load(image_path)
    spec = zoo.get_model(model)
    scaled = (image / spec.scale).astype(np.float32)[None]
    channels_last = zoo.load_network(spec, device="cpu")
    contiguous = fold_batchnorm(zoo.load_network(spec))  # the same folded weights in the plain layout
    settings = {f"tile {tile}": dict(tile_size=tile) for tile in (256, 512, 1024)}
    settings.update({"tile 512, batch 4": dict(tile_size=512, batch_size=4),
                     "tile 512, 1 thread": dict(tile_size=512, threads=1)})
    times = {label: [] for label in [*settings, "channels-last (engine)", "contiguous layout"]}
    DeepCR(model, device="cpu", precision="float32", progress=False).mask(image[:128, :128])
    for _ in range(rounds):
        for label, options in settings.items():
            start = time.perf_counter()
            DeepCR(model, device="cpu", precision="float32", progress=False, **options).mask(image)
            times[label].append(time.perf_counter() - start)
        for label, net in (("channels-last (engine)", channels_last), ("contiguous layout", contiguous)):
            layout = torch.channels_last
            if label == "contiguous layout":  # the engine asks for channels-last input; give it the plain layout
                torch.channels_last = torch.contiguous_format
            try:
                start = time.perf_counter()
                engine.run_tiled(net, scaled, tile_size=512, precision="float32", progress=False)
                times[label].append(time.perf_counter() - start)
            finally:
                torch.channels_last = layout
    return {label: {"best_seconds": min(values), "all_seconds": values} for label, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ACS-WFC")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--shape", type=int, nargs=2, default=(2048, 2048), help="image shape (ny nx)")
    parser.add_argument("--tile", type=int, default=None, help="astro_deepcr tile size (default: conf)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=[*METHODS, *EXTRA_METHODS],
                        help="bfloat16 (forced) is not in the default set: slower than float32 without native bf16")
    parser.add_argument("--no-real", dest="real", action="store_false", help="skip the real HRC frame agreement")
    parser.add_argument("--sweep", action="store_true",
                        help="instead: time engine settings (tile, batch, threads, memory layout) at float32")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", nargs=3, metavar=("METHOD", "IMAGE", "MASK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker, args.model, args.threshold, args.tile, args.repeat, args.threads)
        return 0
    import torch

    from astro_deepcr.engine import native_bfloat16

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        image_path = os.path.join(tmp, "image.npy")
        make_image(image_path, args.shape)
        if args.sweep:
            timings = sweep(image_path, args.model, rounds=max(args.repeat, 2))
            for label, row in timings.items():
                print(f"{label:<26} best {row['best_seconds']:7.2f} s  all {np.round(row['all_seconds'], 2).tolist()}")
            if args.json:
                with open(args.json, "w") as stream:
                    json.dump(timings, stream, indent=2)
            return 0
        results = {}
        # rounds interleave the methods, so that a change of load on a shared machine hits all of them alike
        for _ in range(args.repeat):
            for method in args.methods:
                mask_path = os.path.join(tmp, f"{method}.npy")
                command = [sys.executable, __file__, "--worker", method, image_path, mask_path, "--model",
                           args.model, "--threshold", str(args.threshold), "--repeat", "1", "--threads",
                           str(args.threads)] + (["--tile", str(args.tile)] if args.tile else [])
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                if method in results:
                    result["all_seconds"] = results[method]["all_seconds"] + result["all_seconds"]
                    result["seconds"] = min(result["all_seconds"])
                    result["peak_rss_mib"] = max(result["peak_rss_mib"], results[method]["peak_rss_mib"])
                results[method] = result
                results[method]["mask"] = np.load(mask_path)
    summary = {"shape": list(args.shape), "model": args.model, "threshold": args.threshold,
               "cpu": f"{platform.machine()}, {os.cpu_count()} cores, torch CPU capability "
                      f"{torch.backends.cpu.get_cpu_capability()}, native bfloat16 "
                      f"{'yes' if native_bfloat16('cpu') else 'no'}",
               "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
               "methods": {}}
    reference = results.get("reference")
    for method, result in results.items():
        row = {key: result[key] for key in ("seconds", "all_seconds", "peak_rss_mib", "threads", "precision",
                                            "backend")}
        if reference is not None:
            row["speedup_vs_reference"] = reference["seconds"] / result["seconds"]
            if method != "reference":
                row["identical_to_reference_fraction"] = float((result["mask"] == reference["mask"]).mean())
                row["pixels_differing_from_reference"] = int((result["mask"] != reference["mask"]).sum())
        row["cr_pixels"] = int(result["mask"].sum())
        summary["methods"][method] = row
    if args.real:
        summary.update(real_frame_agreement(args.model, args.threshold))
    print(f"{args.shape[0]}x{args.shape[1]} {args.model}, {summary['cpu']}; load average (1 min) before/after "
          f"{summary['load_average_before_after']}")
    print(f"{'method':<15} {'backend':<20} {'precision':<9} {'seconds':>8} {'x ref':>6} {'peak MiB':>9} "
          f"{'same as ref':>12}")
    for method, row in summary["methods"].items():
        same, ratio = row.get("identical_to_reference_fraction"), row.get("speedup_vs_reference", np.nan)
        print(f"{method:<15} {row['backend']:<20} {row['precision']:<9} {row['seconds']:8.2f} {ratio:6.2f} "
              f"{row['peak_rss_mib']:9.0f} {'' if same is None else f'{same:.6f}':>12}")
    for key, value in summary.items():
        if key.startswith("real"):
            print(f"{key:40s} {value}")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(summary, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
