#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Convert the published deepCR model zoo (PyPI ``deepCR`` 0.3.1, BSD-3,
Copyright (c) 2019 UC Berkeley) into safetensors files for
``astro_deepcr_models``.

This is the only place in the repository that reads a ``.pth`` file, and it
does so with ``torch.load(..., weights_only=True)``, which refuses anything but
tensors and plain containers. The package itself only ever reads the
safetensors written here.

Usage::

    pip download --no-deps deepcr==0.3.1 -d /tmp/deepcr && tar xzf /tmp/deepcr/deepCR-0.3.1.tar.gz -C /tmp/deepcr
    python tools/convert_deepcr_zoo.py /tmp/deepcr/deepCR-0.3.1/learned_models astro_deepcr_models

The model metadata (architecture, normalisation, threshold, provenance) is in
``ZOO`` below; the script writes ``models.json`` with the checksums, keeping
any ``metrics`` already recorded there.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from astro_deepcr.zoo import ModelSpec, build_network, save_network  # noqa: E402

CITATION = "Zhang, K. & Bloom, J. S. 2020, ApJ, 889, 24 (deepCR)"
PROVENANCE = "deepCR 0.3.1 (PyPI, BSD-3, Copyright (c) 2019 UC Berkeley): learned_models/{path}"
LICENSE = "BSD-3-Clause (deepCR); see licenses/DEEPCR_LICENSE.rst"
ACS_DATA = (
    "HST ACS/WFC _flc exposures of extragalactic fields, globular clusters and resolved galaxies "
    "(labels from AstroDrizzle driz_cr on multi-exposure stacks), per Zhang & Bloom 2020"
)

# name: (relative path, kind, depth, width, norm, normalisation, scale, threshold, units,
#        instrument, detector, filters, description, training data)
ZOO = {
    "ACS-WFC": ("mask/ACS-WFC.pth", "mask", 2, 32, "batch", "scale", 1.0, 0.5, "electron", "ACS", "WFC",
                ("F435W", "F606W", "F814W"),
                "Global ACS/WFC deepCR-mask model (F435W, F606W and F814W together).", ACS_DATA),
    "ACS-WFC-F435W": ("mask/ACS-WFC-F435W.pth", "mask", 2, 32, "batch", "scale", 1.0, 0.5, "electron", "ACS",
                      "WFC", ("F435W",), "ACS/WFC F435W deepCR-mask model.", ACS_DATA),
    "ACS-WFC-F606W": ("mask/ACS-WFC-F606W.pth", "mask", 2, 32, "batch", "scale", 1.0, 0.5, "electron", "ACS",
                      "WFC", ("F606W",), "ACS/WFC F606W deepCR-mask model.", ACS_DATA),
    "ACS-WFC-F814W": ("mask/ACS-WFC-F814W.pth", "mask", 2, 32, "batch", "scale", 1.0, 0.5, "electron", "ACS",
                      "WFC", ("F814W",), "ACS/WFC F814W deepCR-mask model.", ACS_DATA),
    "ACS-WFC-F606W-2-4": ("mask/ACS-WFC-F606W-2-4.pth", "mask", 2, 4, "batch", "scale", 100.0, 0.5, "electron",
                          "ACS", "WFC", ("F606W",),
                          "Fast 2-4 deepCR-mask model of the paper (ACS/WFC F606W); input in units of 100 e-.",
                          ACS_DATA),
    "WFC3-UVIS": ("mask/WFC3-UVIS.pth", "mask", 2, 32, "weight", "meanstd", 1.0, 0.1, "electron", "WFC3", "UVIS",
                  (), "WFC3/UVIS deepCR-mask model (weight-normalised convolutions, mean/std input normalisation).",
                  "HST WFC3/UVIS _flc exposures"),
    "decam": ("mask/decam.pth", "mask", 2, 32, "batch", "scale", 1.0, 0.5, "adu", "DECam", "", ("g",),
              "Preliminary DECam deepCR-mask model trained on g-band; input in ADU.",
              "DECam g-band exposures (labels from median coadds)"),
    "ACS-WFC-F606W-2-32": ("inpaint/ACS-WFC-F606W-2-32.pth", "inpaint", 2, 32, "batch", "scale", 100.0, None,
                           "electron", "ACS", "WFC", ("F606W",),
                           "2-32 deepCR-inpaint model of the paper (ACS/WFC F606W); input in units of 100 e-.",
                           ACS_DATA),
    "ACS-WFC-F606W-3-32": ("inpaint/ACS-WFC-F606W-3-32.pth", "inpaint", 3, 32, "batch", "scale", 100.0, None,
                           "electron", "ACS", "WFC", ("F606W",),
                           "3-32 deepCR-inpaint model of the paper (ACS/WFC F606W); input in units of 100 e-.",
                           ACS_DATA),
}

_DOWN = re.compile(r"^down(\d+)\.mpconv\.1\.conv\.(.*)$")
_UP = re.compile(r"^up(\d+)\.(up|conv\.conv)\.(.*)$")


def convert_key(key, depth):
    """Map a deepCR state-dict key to the `astro_deepcr.nets.UNet` name."""
    key = key.removeprefix("module.")
    key = key.replace(".weight_g", ".parametrizations.weight.original0")
    key = key.replace(".weight_v", ".parametrizations.weight.original1")
    if key.startswith("inc.conv.conv."):
        return "inc." + key[len("inc.conv.conv."):]
    if key.startswith("outc.conv."):
        return "head." + key[len("outc.conv."):]
    if match := _DOWN.match(key):
        return f"down.{int(match[1]) - 1}.1.{match[2]}"
    if match := _UP.match(key):
        # deepCR names the last up block up8, the one before it up7, ...
        index = depth - 2 - (8 - int(match[1]))
        part = "up" if match[2] == "up" else "conv"
        return f"up.{index}.{part}.{match[3]}"
    raise KeyError(f"unexpected deepCR key {key!r}")


def convert(source, target):
    source, target = Path(source), Path(target)
    index_path = target / "models.json"
    old = {}
    if index_path.exists():
        old = {entry["name"]: entry for entry in json.loads(index_path.read_text())["models"]}
    entries = []
    for name, row in ZOO.items():
        (path, kind, depth, width, norm, normalisation, scale, threshold, units, instrument, detector, filters,
         description, training) = row
        state = torch.load(source / path, map_location="cpu", weights_only=True)
        state = {convert_key(key, depth): value for key, value in state.items()}
        spec = ModelSpec(name=name, kind=kind, depth=depth, width=width, file="", sha256="", norm=norm)
        net = build_network(spec)
        net.load_state_dict(state, strict=True)
        filename = f"{name}.safetensors"
        sha = save_network(net, target / filename, metadata={"name": name, "source": PROVENANCE.format(path=path)})
        entry = ModelSpec(
            name=name, kind=kind, depth=depth, width=width, file=filename, sha256=sha, norm=norm,
            normalisation=normalisation, scale=scale, threshold=threshold, units=units, instrument=instrument,
            detector=detector, filters=filters, description=description, training_data=training,
            provenance=PROVENANCE.format(path=path), citation=CITATION, license=LICENSE,
            metrics=old.get(name, {}).get("metrics", {}),
        ).to_dict()
        entries.append(entry)
        print(f"{name:22s} {kind:8s} {depth}-{width:<3d} {sha[:16]}")
    index_path.write_text(json.dumps({"format": 1, "models": entries}, indent=2) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="deepCR's learned_models folder")
    parser.add_argument("target", nargs="?", default="astro_deepcr_models", help="output folder")
    args = parser.parse_args(argv)
    convert(args.source, args.target)


if __name__ == "__main__":
    main()
