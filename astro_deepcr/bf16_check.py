# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
bfloat16 validated on the machine that runs it.

The numerics of a reduced precision depend on the runtime, its version and the
kernels of the CPU or GPU that runs it, so a validation measured elsewhere
(a model card's ``bf16_validation``) cannot vouch for this machine. Under
``precision="auto"``, on a device with native bfloat16, the first use of a
mask model compares its float32 and bfloat16 detections here
(`validate`), on

* the real ACS/HRC frame ``j8bt06nyq_flt.fits`` of spherical_geometry's test
  data (SCI 1, ``DQ != 0`` as the bad-pixel mask), where installed: at most
  `FLIP_LIMIT` of its float32 CR pixels may change class;
* a simulated 1024 x 1024 exposure (`simulated_frame`: stars, sky, noise and
  CR tracks, fixed seed): the same flip limit;
* two simulated 512 x 512 exposures with known CRs: TPR at FPR 0.05 % and
  0.5 % within `TPR_LIMIT` of float32's.

Without the real frame no model passes (simulated frames alone let through
models that fail on real data): nothing is measured, nothing cached (installing
spherical_geometry later validates then), and ``auto`` runs float32. The verdict is cached per (model
checksum, runtime and version, device) in astropy's cache directory
(``astro_deepcr/bf16_validation/`` under `astropy.config.get_cache_dir_path`),
one JSON file per key written atomically (a temporary file renamed over it):
processes running at the same time may both validate, never corrupt an entry;
an unreadable entry means "validate again". The first validation is
announced in the log with its cost; a failed one with its figures.
`astro_deepcr.detection.choose_precision` is the only caller that decides
with it; ``astro-deepcr models --validate-precision`` prints the table.
"""

import hashlib
import json
import os
import platform
import tempfile
import threading
import time

import numpy as np
from astropy import log

__all__ = ["FLIP_LIMIT", "TPR_LIMIT", "FPR_TARGETS", "verdict_key", "cached_verdict", "store_verdict",
           "validate", "verdict", "verdict_text", "cache_folder", "format_table"]

FLIP_LIMIT = 0.015
TPR_LIMIT = 0.005
FPR_TARGETS = (0.0005, 0.005)
#: Bumped when the frames or the limits change: older entries are then ignored.
SCHEMA = 3
_memo = {}
_memo_lock = threading.Lock()


#: Environment variable naming another folder for the verdicts (the test suite points it at a temporary one).
CACHE_ENV = "ASTRO_DEEPCR_BF16_CACHE"


def cache_folder():
    """The folder of the cached verdicts (created on first write): ``$ASTRO_DEEPCR_BF16_CACHE`` if set, else
    ``astro_deepcr/bf16_validation`` in astropy's cache directory."""
    from astropy.config import get_cache_dir_path

    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return override
    return os.path.join(os.fspath(get_cache_dir_path()), "astro_deepcr", "bf16_validation")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def device_capability(backend, device):
    """What the kernels depend on: the GPU and its compute capability, or the CPU, its ISA level
    (torch's) and, for OpenVINO, the plugin's optimisation capabilities."""
    import torch

    from .engine import NATIVE_BF16_ENV

    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"{torch.cuda.get_device_name(device)} (sm_{major}{minor})"
    parts = [platform.machine(), cpu_name(), torch.backends.cpu.get_cpu_capability()]
    if backend == "openvino":
        from . import openvino_backend

        parts.append(" ".join(sorted(openvino_backend._get_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))))
    forced = os.environ.get(NATIVE_BF16_ENV, "").strip()
    if forced:
        parts.append(f"{NATIVE_BF16_ENV}={forced}")  # a pretended verdict never serves the real thing
    return ", ".join(parts)


def runtime_label(backend):
    """``"openvino 2026.4.1"`` or ``"torch 2.13.0"``."""
    if backend == "openvino":
        from . import openvino_backend

        return f"openvino {openvino_backend.version()}"
    import torch

    return f"torch {torch.__version__.split('+')[0]}"


def verdict_key(spec, backend, device):
    """The cache key of ``spec``'s verdict on this machine: model checksum, runtime and version, device."""
    return {"schema": SCHEMA, "model": spec.name, "sha256": spec.sha256, "runtime": runtime_label(backend),
            "device": device_capability(backend, device), "flip_limit": FLIP_LIMIT, "tpr_limit": TPR_LIMIT}


def _path(key):
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return os.path.join(cache_folder(), f"{key['model']}-{digest}.json")


def cached_verdict(key):
    """The stored result for ``key``, or None (none stored, unreadable, or for another key)."""
    try:
        with open(_path(key)) as stream:
            entry = json.load(stream)
        if entry["key"] == key and isinstance(entry["result"]["passed"], bool):
            return entry["result"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        log.debug(f"bfloat16 verdict cache entry {_path(key)} unreadable: validating again")
    return None


def store_verdict(key, result):
    """Write ``result`` for ``key`` atomically; returns the path (None where the cache is not writable)."""
    path = _path(key)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".json")
        with os.fdopen(handle, "w") as stream:
            json.dump({"key": key, "result": result}, stream, indent=1)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        log.warning(f"could not cache the bfloat16 verdict in {os.path.dirname(path)} ({error}): "
                    "it will be measured again by the next process")
        return None
    return path


def real_frame():
    """The ACS/HRC frame (electrons) and its bad pixels (``DQ != 0``), or None where not installed."""
    from astropy.io import fits

    from .datasets import hst_example_path

    try:
        path = hst_example_path()
    except FileNotFoundError:
        return None
    with fits.open(path) as hdul:
        return np.asarray(hdul["SCI", 1].data, np.float32), np.asarray(hdul["DQ", 1].data) != 0


def simulated_frame(size, seed, n_stars=400, n_crs=None):
    """A deterministic ACS/WFC-like exposure in electrons with its CR truth: sky 60 e-, read noise 4 e-,
    Gaussian stars (sigma 1.0 px), and straight CR tracks of 1-10 px carrying 15-4000 e- per pixel (log-uniform).

    Self-contained on purpose: the core may not use `astro_deepcr.training`; its full simulator is what the
    models were evaluated with, this one only has to put realistic CR and star pixels in front of both
    precisions (the real HRC frame is the discriminating test)."""
    rng = np.random.default_rng(seed)
    n_crs = size * size // 2500 if n_crs is None else n_crs
    expected = np.full((size, size), 60.0)
    offsets = np.arange(-6, 7)
    for y, x, flux in zip(rng.uniform(6, size - 7, n_stars), rng.uniform(6, size - 7, n_stars),
                          rng.lognormal(7.5, 1.3, n_stars), strict=True):
        iy, ix = int(y), int(x)
        profile_y = np.exp(-0.5 * (iy + offsets - y) ** 2)
        profile_x = np.exp(-0.5 * (ix + offsets - x) ** 2)
        expected[iy - 6:iy + 7, ix - 6:ix + 7] += flux / (2 * np.pi) * np.outer(profile_y, profile_x)
    image = rng.poisson(expected).astype(np.float64) + rng.normal(0.0, 4.0, (size, size))
    deposit = np.zeros((size, size))
    for _ in range(n_crs):
        length, angle = rng.integers(1, 11), rng.uniform(0, np.pi)
        y0, x0 = rng.uniform(0, size, 2)
        steps = np.linspace(0, length - 1, 2 * length)
        ys = np.clip((y0 + steps * np.sin(angle)).astype(int), 0, size - 1)
        xs = np.clip((x0 + steps * np.cos(angle)).astype(int), 0, size - 1)
        deposit[ys, xs] = np.exp(rng.uniform(np.log(15.0), np.log(4000.0), ys.size))  # faint edges to bright cores
    return {"image": (image + deposit).astype(np.float32), "cr_mask": deposit > 0}


def simulated_frames():
    """``(flip frame, [TPR frames])``: `simulated_frame` 1024 x 1024 (seed 7) and two 512 x 512 (seeds 101, 102)."""
    return simulated_frame(1024, 7), [simulated_frame(512, seed) for seed in (101, 102)]


def _tpr_at_fpr(probability, truth, target):
    """TPR at the lowest threshold whose FPR (strictly above it) is at most ``target``."""
    negatives = np.sort(probability[~truth])[::-1]
    allowed = int(np.floor(target * negatives.size))
    threshold = negatives[allowed] if allowed < negatives.size else -np.inf
    return float((probability[truth] > threshold).mean())


def validate(detect):
    """float32 against bfloat16 on the validation frames.

    Parameters
    ----------
    detect : callable
        ``detect(image, bad, precision) -> (probability, cr_mask)``: the
        model's detection at ``precision`` (``"float32"`` or ``"bfloat16"``).

    Returns
    -------
    result : dict
        The figures, ``passed`` and ``seconds`` (the cost).
    """
    start = time.perf_counter()
    result = {"date": time.strftime("%Y-%m-%d", time.gmtime())}
    hrc = real_frame()
    if hrc is None:  # no pass possible: measure nothing (each process would pay for a failure)
        return {**result, "real_frame": False, "passed": False, "seconds": 0.0}
    flips, tpr_frames = simulated_frames()
    frames = {"hrc": hrc, "simulated": (flips["image"], None)}
    for name, (image, bad) in frames.items():
        masks = [detect(image, bad, precision)[1] for precision in ("float32", "bfloat16")]
        crs = int(masks[0].sum())
        result[f"{name}_flipped_pixels"], result[f"{name}_cr_pixels"] = int((masks[0] != masks[1]).sum()), crs
        result[f"{name}_flipped_fraction"] = result[f"{name}_flipped_pixels"] / max(crs, 1)
    truth = np.concatenate([frame["cr_mask"].ravel() for frame in tpr_frames])
    for precision in ("float32", "bfloat16"):
        probability = np.concatenate([detect(frame["image"], None, precision)[0].ravel() for frame in tpr_frames])
        for target in FPR_TARGETS:
            result[f"tpr@{target:g}_{precision}"] = _tpr_at_fpr(probability, truth, target)
    passed = all(result[f"{name}_flipped_fraction"] <= FLIP_LIMIT for name in frames)
    passed &= all(abs(result[f"tpr@{t:g}_bfloat16"] - result[f"tpr@{t:g}_float32"]) <= TPR_LIMIT
                  for t in FPR_TARGETS)
    result["real_frame"] = True
    result["passed"] = bool(passed)
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def verdict_text(result, where="here"):
    """One line for logs and headers: ``"passed here 2026-12-04 (HRC 48/3828 flipped)"``."""
    state = "passed" if result["passed"] else "failed"
    if not result.get("real_frame", True):
        return f"not validated {where}: the real HRC frame (spherical_geometry's test data) is not installed"
    return (f"{state} {where} {result['date']} (HRC {result['hrc_flipped_pixels']}/{result['hrc_cr_pixels']} "
            f"flipped)")


def _figures(result):
    parts = []
    for name in ("hrc", "simulated"):
        if f"{name}_cr_pixels" in result:
            parts.append(f"{name} {result[f'{name}_flipped_pixels']}/{result[f'{name}_cr_pixels']} CR pixels flipped "
                         f"({100 * result[f'{name}_flipped_fraction']:.2f} %)")
    parts += [f"TPR@{100 * t:g} % {result[f'tpr@{t:g}_float32']:.4f} -> {result[f'tpr@{t:g}_bfloat16']:.4f}"
              for t in FPR_TARGETS]
    return "; ".join(parts)


def verdict(spec, backend, device, detect, refresh=False):
    """``(result, fresh)``: the cached verdict of ``spec`` on this machine, measured (`validate`) and cached
    on first use (``refresh``: measured again); ``fresh`` says it was measured by this call. Announced in
    the log once per process."""
    key = verdict_key(spec, backend, device)
    memo_key = json.dumps(key, sort_keys=True)
    with _memo_lock:
        if memo_key in _memo and not refresh:
            return _memo[memo_key], False
    result = None if refresh else cached_verdict(key)
    fresh = result is None
    if fresh:
        log.info(f"validating bfloat16 for model {spec.name} on this machine ({key['runtime']}; "
                 f"{key['device']}): float32 against bfloat16 on the validation frames, once")
        result = validate(detect)
        if result["real_frame"]:
            store_verdict(key, result)
        _announce(spec, result)
    with _memo_lock:
        _memo[memo_key] = result
    return result, fresh


def _announce(spec, result):
    if not result["real_frame"]:
        log.warning(f"bfloat16 for model {spec.name} {verdict_text(result)}: float32 under precision='auto'")
        return
    message = (f"bfloat16 for model {spec.name} {verdict_text(result)} in {result['seconds']:.1f} s: "
               f"{_figures(result)} (limits {100 * FLIP_LIMIT:g} %, TPR within {TPR_LIMIT:g})")
    if result["passed"]:
        log.info(message + f"; bfloat16 under precision='auto', verdict cached in {cache_folder()}")
    else:
        log.warning(message + "; float32 under precision='auto'")


def format_table(rows):
    """The ``astro-deepcr models --validate-precision`` table of ``[(model, result, fresh)]``."""
    lines = [f"{'model':<20} {'verdict':<7} {'HRC flipped':>18} {'simulated':>9} {'TPR@0.05% f32->bf16':>20} "
             f"{'TPR@0.5% f32->bf16':>19} {'s':>6}  source"]
    for name, result, fresh in rows:
        if not result.get("real_frame"):
            lines.append(f"{name:<20} {'FAIL':<7} {verdict_text(result)}")
            continue
        hrc = (f"{result['hrc_flipped_pixels']}/{result['hrc_cr_pixels']} "
               f"({100 * result['hrc_flipped_fraction']:.2f}%)") if result.get("real_frame") else "no frame"
        tprs = [f"{result[f'tpr@{t:g}_float32']:.4f}->{result[f'tpr@{t:g}_bfloat16']:.4f}" for t in FPR_TARGETS]
        lines.append(f"{name:<20} {'pass' if result['passed'] else 'FAIL':<7} {hrc:>18} "
                     f"{100 * result['simulated_flipped_fraction']:8.2f}% {tprs[0]:>20} {tprs[1]:>19} "
                     f"{result['seconds']:6.1f}  {'measured now' if fresh else 'cached ' + result['date']}")
    return "\n".join(lines)
