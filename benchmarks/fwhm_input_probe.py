#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Rule R28's probe (docs/ground_search.rst, "Telling the network the seeing"): does a mask network told the frame's
PSF FWHM learn undersampled PSFs without the cost an untold one pays on well-sampled frames?

A probe, not a package feature: the package's networks take the image alone. Two networks are fine-tuned from
``ground-v2`` on the same simulated frames (seed 1, 1500 steps of 16, ``ground-v2``'s mix with Moffat PSFs from
0.8 px FWHM): ``U`` as it is, ``P`` with a second, constant input channel ``1000 ln(FWHM / 2.7 px)`` whose first
weights start at zero (so ``P`` starts as ``ground-v2``). The factor brings the channel to the scale of the
image's first activations (electrons: ``ground-v2``'s first BatchNorm has running std 1100-15000); with
``ln(FWHM / 2.7)`` alone its weights stayed near 0.04 and ``P`` trained as ``U`` did. At evaluation ``P`` gets
each frame's FWHM from `~astro_deepcr.evaluation.frames.frame_psf` and runs through the detection core: this
script swaps the core's network call for ``P``'s (``detection.run_network``), so bad pixels, saturation and the
threshold are decided as for every other model. Float32 only: run with ``ASTRO_DEEPCR_NATIVE_BF16=0``. ::

    python benchmarks/fwhm_input_probe.py train P RUN/P [--threads 2] [--stop-at N]   # and U RUN/U
    python benchmarks/fwhm_input_probe.py train P RUN/P2 --steps 750 --hst-psf 0.5    # R29; and U RUN/U2
    python benchmarks/fwhm_input_probe.py validate RUN/P/P.safetensors RUN/U/U.safetensors
    python benchmarks/fwhm_input_probe.py pair RUN/P/P.safetensors RUN/U/U.safetensors [--frames ...]
    python benchmarks/fwhm_input_probe.py pair RUN/P/P.safetensors ground-v2 --frames saao gmos kpno
    python benchmarks/fwhm_input_probe.py swap RUN/P/P.safetensors saao kpno hrc wfpc2-wf4 wfpc2-pc1

``pair`` is ``paired_models.py --equal-flags`` (the candidate at the reference's flag count on each uninjected
frame); ``validate``: 64 validation frames of the training mix, the candidate at the reference's false-flag
count on their cosmic-ray-free images, pixel TPR overall and on the frames below 1.5 px FWHM; ``swap``: ``P``'s
flags at 0.5 on each uninjected frame told its own FWHM and others (does it use the input?).
"""

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import warnings

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))

REFERENCE_FWHM = 2.7  # px: c = 0 here (about KPNO's seeing)
CONDITION_SCALE = 1000.0
MIX = {"long_slit": 0.25, "spikes": 0.5, "fwhm_min": 0.8}
_current_fwhm = {"value": None}


def condition(fwhm):
    """The second input channel's value for a frame of ``fwhm`` px."""
    return float(CONDITION_SCALE * np.log(fwhm / REFERENCE_FWHM))


def _config(name, steps=1500, hst_psf=0.0):
    from astro_deepcr.training.ground_train import GroundConfig

    return GroundConfig(init_from="ground-v2", steps=steps, batch_size=16, seed=1, name=name, hst_psf=hst_psf, **MIX)


def _frames(conditioned, config):
    import torch

    from astro_deepcr.training.ground_train import GroundFrames

    class ConditionedFrames(GroundFrames):
        def __getitem__(self, index):
            frame = self.frame(index)
            image = frame["image"][None]
            return {"image": torch.from_numpy(np.concatenate(
                        [image, np.full_like(image, condition(frame["params"]["fwhm"]))])),
                    "cr": torch.from_numpy(frame["label"][None].astype(np.float32)),
                    "ignore": torch.from_numpy(frame["ignore"][None].astype(np.float32))}

    cls = ConditionedFrames if conditioned else GroundFrames
    return cls(config.crop, config.seed, config.library(), config.mix())


def _two_input(net):
    """``net`` (a 1-input UNet) with a second input whose weights are zero: the same function of the image."""
    import torch

    from astro_deepcr.nets import UNet

    wider = UNet(in_channels=2, depth=net.depth, width=net.width, norm="batch", sigmoid=True)
    state = net.state_dict()
    state["inc.0.weight"] = torch.cat([state["inc.0.weight"], torch.zeros_like(state["inc.0.weight"])], dim=1)
    wider.load_state_dict(state)
    return wider


def write_card(path, conditioned):
    """A card beside a probe's weights: ``ground-v2``'s fields under the file's own name (so the zoo takes it)."""
    from astro_deepcr.zoo import get_model

    fields = {key: value for key, value in get_model("ground-v2", kind="mask").to_dict().items()
              if key not in ("file", "sha256", "metrics", "provenance")}
    fields.update(name=f"probe-{path.stem}", description="R28 probe network (docs/ground_search.rst), not shipped"
                  + (f"; second input {CONDITION_SCALE:g} ln(FWHM / {REFERENCE_FWHM} px)" if conditioned else ""))
    path.with_suffix(".json").write_text(json.dumps(fields, indent=1))


def train(kind, output, threads, stop_at=None, steps=1500, hst_psf=0.0):
    import torch

    from astro_deepcr.training.ground_train import _result_settings, fit
    from astro_deepcr.training.trainer import trainable_copy
    from astro_deepcr.zoo import get_model, save_network

    conditioned = kind == "P"
    torch.set_num_threads(threads)
    config = _config(kind, steps, hst_psf)
    torch.manual_seed(config.seed)
    net = trainable_copy(get_model("ground-v2", kind="mask"))
    net = _two_input(net) if conditioned else net
    os.makedirs(output, exist_ok=True)
    settings = dict(_result_settings(config), conditioned=conditioned,
                    cond_scale=CONDITION_SCALE if conditioned else None)
    history, done = fit(net, _frames(conditioned, config), output, steps=config.steps,
                        batch_size=config.batch_size, lr=config.lr, bn_until=0, checkpoint_every=100,
                        stop_at=stop_at, settings=settings)
    path = pathlib.Path(output) / f"{kind}.safetensors"
    save_network(net, str(path), {"name": kind, "arch": "2-32", "config": json.dumps(dataclasses.asdict(config)),
                                  "conditioned": f"{CONDITION_SCALE:g} ln(fwhm/{REFERENCE_FWHM})" if conditioned
                                  else "none"})
    write_card(path, conditioned)
    with open(os.path.join(output, "log.json"), "w") as stream:
        json.dump({"history": history, "steps_done": done, "settings": settings}, stream, indent=1)
    print("wrote", path)


def _is_conditioned(path):
    from safetensors import safe_open

    if not str(path).endswith(".safetensors") or not os.path.isfile(path):
        return False
    with safe_open(path, "pt") as weights:
        return (weights.metadata() or {}).get("conditioned", "none") != "none"


def _load(path):
    from safetensors.torch import load_file

    from astro_deepcr.nets import UNet

    state = load_file(path)
    net = UNet(in_channels=state["inc.0.weight"].shape[1], depth=2, width=32, norm="batch", sigmoid=True)
    net.load_state_dict(state)
    return net.eval()


def route_probe_networks():
    """Let the detection core run a conditioned probe network: its network call (and the backend label it logs)
    take ``P``'s two inputs, the frame's FWHM from `_current_fwhm`; every other model runs as before."""
    import astro_deepcr.detection as detection
    from astro_deepcr import engine

    run_network, backend_used, prepared = detection.run_network, detection.backend_used, {}

    def probe_file(spec):
        path = str(getattr(spec, "file", "") or "")
        return path if _is_conditioned(path) else None

    def run(spec, inputs, **options):
        path = probe_file(spec)
        if path is None:
            return run_network(spec, inputs, **options)
        if options.get("precision", "float32") != "float32":
            raise RuntimeError("the probe runs float32 only: set ASTRO_DEEPCR_NATIVE_BF16=0")
        if path not in prepared:
            prepared[path] = engine.prepare_network(_load(path), "cpu", "float32")
        plane = np.full((1,) + inputs.shape[1:], condition(_current_fwhm["value"]), np.float32)
        return engine.run_tiled(prepared[path], np.concatenate([inputs, plane]).astype(np.float32),
                                tile_size=options.get("tile_size"), batch_size=options.get("batch_size"),
                                device="cpu", precision="float32", threads=options.get("threads"), progress=False)

    def backend(spec, *args, **options):
        return "torch (R28 probe)" if probe_file(spec) else backend_used(spec, *args, **options)

    detection.run_network, detection.backend_used = run, backend


def validate(candidate, reference, n_frames=64):
    import torch

    from astro_deepcr.training.ground_train import validation_frames

    config = _config("validation")
    frames = validation_frames(n_frames, crop=256, seed=0, mix=config.mix(), hrc_library=config.hrc_library)
    nets = {"candidate": _load(candidate), "reference": _load(reference)}
    probability = {key: {"clean": [], "image": []} for key in nets}
    for frame in frames:
        for key, net in nets.items():
            for which in ("clean", "image"):
                x = torch.from_numpy(frame[which][None, None].astype(np.float32))
                if net.inc[0].in_channels == 2:
                    x = torch.cat([x, torch.full_like(x, condition(frame["params"]["fwhm"]))], 1)
                with torch.inference_mode():
                    probability[key][which].append(net(x)[0, 0].numpy())
    usable = [~frame["ignore"] for frame in frames]
    target = sum(int(((p > 0.5) & u).sum()) for p, u in zip(probability["reference"]["clean"], usable))
    values = np.sort(np.concatenate([p[u] for p, u in zip(probability["candidate"]["clean"], usable)]))[::-1]
    # every threshold in [values[target], values[target - 1]) gives the target count: the logit midpoint
    low, high = float(values[target]), float(values[target - 1]) if target else 1 - 1e-6
    threshold = float(1 / (1 + np.sqrt((1 - low) / low * (1 - high) / high)))
    sharp = np.array([frame["params"]["fwhm"] < 1.5 for frame in frames])
    result = {"frames": n_frames, "reference false flags at 0.5": target, "candidate threshold": round(threshold, 4)}
    for subset, chosen in (("all", np.ones(n_frames, bool)), ("FWHM < 1.5 px", sharp), ("FWHM >= 1.5 px", ~sharp)):
        for key, cut in (("reference", 0.5), ("candidate", threshold)):
            found = sum(int(((p > cut) & f["label"]).sum())
                        for p, f, c in zip(probability[key]["image"], frames, chosen) if c)
            total = sum(int(f["label"].sum()) for f, c in zip(frames, chosen) if c)
            result[f"{key} TPR, {subset} ({int(chosen.sum())} frames, {total} px)"] = round(found / total, 4)
    print(json.dumps(result, indent=1))


def _frames_with_fwhm(names, installed_frames):
    from astro_deepcr.evaluation.frames import frame_psf

    for name, frame in installed_frames(names, file=sys.stderr):
        _current_fwhm["value"] = float(frame_psf(frame).fwhm)
        print(f"# {name}: FWHM {_current_fwhm['value']:.3f} px, input {condition(_current_fwhm['value']):+.1f}",
              flush=True)
        yield name, frame


def pair(candidate, reference, frames, libraries):
    import injection_frames as inj
    import paired_models

    installed_frames = inj.installed_frames
    inj.installed_frames = lambda names, file=None: _frames_with_fwhm(names, installed_frames)
    for line in paired_models.paired_lines(candidate, reference=reference, frames=frames, libraries=libraries,
                                           equal_flags=True):
        print(line, flush=True)


def swap(candidate, frames):
    import injection_frames as inj

    from astro_deepcr.detection import choose_model
    from astro_deepcr.evaluation.detectors import deepcr_detector

    for name, frame in _frames_with_fwhm(frames, inj.installed_frames):
        own = _current_fwhm["value"]
        detector = deepcr_detector(choose_model(frame["header"], model=candidate)[0], dq=frame.get("dq"),
                                   satlevel=frame.get("satlevel"))
        counts = []
        for fwhm in (own, 0.8, 1.4, 2.7, 5.0, 8.0):
            _current_fwhm["value"] = fwhm
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the out-of-domain alarm at a wrong FWHM: measured, not a failure
                counts.append(f"{fwhm:.2f} px: {int(detector(frame['electrons']).sum())}")
        print(f"| {name} | " + " | ".join(counts) + " |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    step = commands.add_parser("train", help="fine-tune P (told the FWHM) or U (not) from ground-v2")
    step.add_argument("kind", choices=("P", "U"))
    step.add_argument("output")
    step.add_argument("--threads", type=int, default=2)
    step.add_argument("--stop-at", type=int, help="stop after this many steps of the schedule")
    step.add_argument("--steps", type=int, default=1500, help="the schedule's length (%(default)s)")
    step.add_argument("--hst-psf", type=float, default=0.0,
                      help="fraction of imaging frames with TinyTim HST PSFs (R29: 0.5; the input is their "
                      "equivalent FWHM)")
    step = commands.add_parser("validate", help="pixel TPR at the reference's false flags, 64 validation frames")
    step.add_argument("candidate")
    step.add_argument("reference")
    step = commands.add_parser("pair", help="paired_models.py --equal-flags with a probe network")
    step.add_argument("candidate")
    step.add_argument("reference")
    step.add_argument("--frames", nargs="+")
    step.add_argument("--libraries", nargs="+", default=["wfpc2", "kpno", "thin-ccd", "thick-ccd"])
    step = commands.add_parser("swap", help="P's flags on each frame told its own FWHM and others")
    step.add_argument("candidate")
    step.add_argument("frames", nargs="+")
    args = parser.parse_args(argv)
    if os.environ.get("ASTRO_DEEPCR_NATIVE_BF16") != "0" and args.command in ("pair", "swap"):
        parser.error("run with ASTRO_DEEPCR_NATIVE_BF16=0: the probe network runs float32, and so must the others")
    if args.command == "train":
        train(args.kind, args.output, args.threads, args.stop_at, args.steps, args.hst_psf)
        return
    if args.command == "validate":
        validate(args.candidate, args.reference)
        return
    route_probe_networks()
    if args.command == "pair":
        pair(args.candidate, args.reference, args.frames, args.libraries)
    else:
        swap(args.candidate, args.frames)


if __name__ == "__main__":
    main()
