#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
bfloat16 against float32, per model: the validations recorded in the model cards.

Under ``precision="auto"`` the decision is the verdict measured on the machine
that runs the model (`astro_deepcr.bf16_check`, ``astro-deepcr models
--validate-precision``); the cards' figures written here are documentation of
where they were measured.

A mask model may run bfloat16 under ``precision="auto"`` only if its
bfloat16 masks (with `astro_deepcr.nets.FLOAT32_LAYERS` kept in float32),
compared with its own float32 masks at its default threshold,

* differ on at most 1.5 % of the float32 CR pixels of the real ACS/HRC
  frame ``j8bt06nyq_flt.fits`` (SCI 1, DQ != 0 as ``inmask``) and of a
  simulated exposure (`astro_deepcr.training.simulate`, ``--sim-size``), and
* give a TPR at FPR 0.05 % and 0.5 % on the evaluation fields
  (`astro_deepcr.evaluation.report.make_test_set`, 512x512, ``--test-images``
  per field) within 0.005 of float32's.

An inpainting model passes if its bfloat16 MSE over the true CR pixels of
the evaluation fields is within 2 % of its float32 MSE. ::

    python benchmarks/validate_precision.py                  # print the table
    python benchmarks/validate_precision.py --write          # also update models.json
    python benchmarks/validate_precision.py --layers         # which layers must stay float32
    python benchmarks/validate_precision.py --backend openvino --write   # on a CPU with native bfloat16

``--write`` edits only the ``auto_precision`` and ``bf16_validation`` keys of
each model in ``astro_deepcr_models/models.json`` (load, modify, write back);
with ``--backend openvino`` only ``bf16_validation["backends"]["openvino"]``
(`astro_deepcr.engine.bf16_validated`). For torch the numbers are properties
of the arithmetic, not of the CPU: where the CPU has no native bfloat16 torch
emulates it (slowly) with the same rounding. OpenVINO computes bfloat16 only
on CPUs with native support (AVX512-BF16 or AMX) and its kernels differ from
torch's, so its validation must run on such a CPU.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

from astro_deepcr.bf16_check import real_frame

FLIP_LIMIT = 0.015
TPR_LIMIT = 0.005
MSE_LIMIT = 0.02
#: Layer sets compared by ``--layers`` (dotted submodule names of a UNet).
LAYER_SETS = {
    "none (bf16 everywhere)": (),
    "head": ("head",),
    "first conv": ("inc.0",),
    "first conv + head": ("inc.0", "head"),
    "first conv + head + transposed convs": ("inc.0", "head", "up.0.up"),
    "first DoubleConv + head": ("inc", "head"),
}


def simulated_frame(size=1024, seed=7):
    from astro_deepcr.training.simulate import simulate_exposure

    return simulate_exposure((size, size), "extragalactic", exptime=500.0, sky=60.0, read_noise=4.0, seed=seed)


def _model(name, precision):
    from astro_deepcr import DeepCR

    return DeepCR(name, device="cpu", precision=precision, progress=False)


def use_backend(backend):
    """Run every model of this process on ``backend`` (conf.backend); refuse an OpenVINO bfloat16 validation
    where OpenVINO would silently compute float32."""
    from astro_deepcr import conf

    conf.backend = backend
    if backend == "openvino":
        from astro_deepcr import openvino_backend

        if "bfloat16" not in openvino_backend.native_precisions():
            raise SystemExit("OpenVINO computes bfloat16 only on CPUs with native bf16 (AVX512-BF16 or AMX): "
                             "this CPU cannot validate it")


def flipped(name, image, inmask, layers=None):
    """``(differing pixels, float32 CR pixels, seconds float32, seconds bf16)``."""
    from astro_deepcr import nets, zoo

    if layers is not None:
        nets.FLOAT32_LAYERS = tuple(layers)
        zoo.clear_network_cache()
    masks, seconds = [], []
    for precision in ("float32", "bfloat16"):
        model = _model(name, precision)
        start = time.perf_counter()
        masks.append(model.mask(image, inmask=inmask))
        seconds.append(time.perf_counter() - start)
    return int((masks[0] != masks[1]).sum()), int(masks[0].sum()), *seconds


def tpr_table(name, test_set):
    from astro_deepcr.evaluation.metrics import roc_curve, tpr_at_fpr
    from astro_deepcr.evaluation.report import FPR_TARGETS

    truth = np.stack([item["cr_mask"] for item in test_set])
    rows = {}
    for precision in ("float32", "bfloat16"):
        model = _model(name, precision)
        score = np.stack([model.probability(item["image"]) for item in test_set])
        fpr, tpr, _ = roc_curve(score, truth)
        rows[precision] = {f"tpr@{target:g}": tpr_at_fpr(fpr, tpr, target) for target in FPR_TARGETS}
    return rows


def validate_mask(name, hrc, simulated, test_set):
    result = {}
    if hrc is not None:
        differ, crs, *_ = flipped(name, *hrc)
        result["hrc_flipped_fraction"] = differ / max(crs, 1)
        result["hrc_flipped_pixels"], result["hrc_cr_pixels"] = differ, crs
    differ, crs, *_ = flipped(name, simulated["image"], None)
    result["simulated_flipped_fraction"] = differ / max(crs, 1)
    result["simulated_flipped_pixels"], result["simulated_cr_pixels"] = differ, crs
    rows = tpr_table(name, test_set)
    for key in rows["float32"]:
        result[f"{key}_float32"] = rows["float32"][key]
        result[f"{key}_bfloat16"] = rows["bfloat16"][key]
    passed = all(result[key] <= FLIP_LIMIT for key in result if key.endswith("_flipped_fraction"))
    passed &= all(abs(rows["bfloat16"][key] - rows["float32"][key]) <= TPR_LIMIT for key in rows["float32"])
    result["passed"] = bool(passed and hrc is not None)
    return result


def validate_inpaint(name, test_set):
    from astro_deepcr.evaluation.metrics import inpaint_mse

    result = {}
    for precision in ("float32", "bfloat16"):
        model = _model("ACS-WFC", precision)
        errors = [inpaint_mse(model.inpaint(item["image"], item["cr_mask"], method=name), item["clean"],
                              item["cr_mask"]) for item in test_set]
        result[f"mse_{precision}"] = float(np.mean(errors))
    result["mse_relative_change"] = result["mse_bfloat16"] / result["mse_float32"] - 1.0
    result["passed"] = bool(abs(result["mse_relative_change"]) <= MSE_LIMIT)
    return result


def layer_study(models, hrc):
    print(f"{'model':<10} {'kept in float32':<40} {'flipped':>8} {'of CRs':>7} {'fraction':>9} {'bf16 s':>7}")
    for name in models:
        for label, layers in LAYER_SETS.items():
            differ, crs, _, bf16_seconds = flipped(name, *hrc, layers=layers)
            print(f"{name:<10} {label:<40} {differ:8d} {crs:7d} {differ / crs:9.4f} {bf16_seconds:7.2f}", flush=True)


def write_cards(results, path, backend="torch"):
    """Update only ``auto_precision`` and ``bf16_validation`` of the validated models (another backend than
    torch: only its entry ``bf16_validation["backends"][backend]``)."""
    with open(path) as stream:
        index = json.load(stream)
    for entry in index["models"]:
        if entry["name"] in results:
            result = {key: round(value, 6) if isinstance(value, float) else value
                      for key, value in results[entry["name"]].items()}
            if backend == "torch":
                backends = entry.get("bf16_validation", {}).get("backends")
                entry["auto_precision"] = "bfloat16" if result["passed"] else "float32"
                entry["bf16_validation"] = {**result, **({"backends": backends} if backends else {})}
            else:
                entry.setdefault("bf16_validation", {}).setdefault("backends", {})[backend] = result
    with open(path, "w") as stream:
        json.dump(index, stream, indent=2)
        stream.write("\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="model names (default: every registered model)")
    parser.add_argument("--layers", action="store_true", help="compare the float32 layer sets on the HRC frame")
    parser.add_argument("--write", action="store_true", help="write the results into models.json")
    parser.add_argument("--sim-size", type=int, default=1024, help="side of the simulated frame")
    parser.add_argument("--test-images", type=int, default=2, help="evaluation images per field (512x512 each)")
    parser.add_argument("--backend", choices=("torch", "openvino"), default="torch",
                        help="inference backend validated (openvino: on a CPU with native bfloat16 only)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    use_backend(args.backend)

    from astro_deepcr import get_model, list_models
    from astro_deepcr.evaluation.report import make_test_set
    from astro_deepcr.nets import FLOAT32_LAYERS

    hrc = real_frame()  # astro_deepcr.bf16_check's reader: the frame the first-use validation reads
    if hrc is None:
        print("spherical_geometry's j8bt06nyq_flt.fits is not installed: no model can pass", file=sys.stderr)
    print(f"backend {args.backend}, torch {torch.__version__}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {platform.machine()}, {torch.get_num_threads()} threads")
    models = args.models or list_models()
    if args.layers:
        layer_study([name for name in models if get_model(name).kind == "mask"], hrc)
        return 0
    simulated, test_set = simulated_frame(args.sim_size), make_test_set(n_images=args.test_images)
    setup = {"simulated_side": args.sim_size, "evaluation_images": len(test_set)}
    results = {}
    for name in models:
        start = time.perf_counter()
        if get_model(name).kind == "mask":
            results[name] = validate_mask(name, hrc, simulated, test_set)
        else:
            results[name] = validate_inpaint(name, test_set)
        results[name].update(setup, float32_layers=list(FLOAT32_LAYERS))
        if args.backend != "torch":
            from astro_deepcr import openvino_backend

            results[name].update(version=openvino_backend.version(),
                                 cpu=f"{platform.machine()}, {torch.backends.cpu.get_cpu_capability()}")
        print(name, json.dumps(results[name]), f"({time.perf_counter() - start:.0f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(results, stream, indent=1)
    if args.write:
        import astro_deepcr_models

        write_cards(results, os.path.join(os.path.dirname(astro_deepcr_models.__file__), "models.json"),
                    backend=args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
