#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Put a trained model into the zoo: copy its weights into ``astro_deepcr_models/`` and add (or replace) its card
in ``models.json``, checking the weights against the card's SHA-256 first::

    python tools/ship_model.py RUN/ground.json [--metrics FILE.json]

``--metrics`` merges measured figures (e.g. the held-out injection table of
``benchmarks/injection_frames.py --model RUN/ground.safetensors --json FILE``)
into the card's ``metrics``. Nothing is shipped without a card.
"""

import argparse
import json
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
ZOO = ROOT / "astro_deepcr_models"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("card", help="the run's card, NAME.json beside NAME.safetensors")
    parser.add_argument("--metrics", help="JSON object merged into the card's metrics")
    args = parser.parse_args(argv)
    from astro_deepcr.zoo import file_sha256

    card_path = pathlib.Path(args.card)
    card = json.loads(card_path.read_text())
    weights = card_path.parent / card["file"]
    if file_sha256(weights) != card["sha256"]:
        print(f"{weights}: SHA-256 differs from the card's", file=sys.stderr)
        return 1
    if args.metrics:
        card["metrics"].update(json.loads(pathlib.Path(args.metrics).read_text()))
    shutil.copyfile(weights, ZOO / card["file"])
    index = ZOO / "models.json"
    zoo = json.loads(index.read_text())
    zoo["models"] = [entry for entry in zoo["models"] if entry["name"] != card["name"]] + [card]
    tmp = index.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(zoo, indent=2) + "\n")
    tmp.replace(index)
    print(f"shipped {card['name']}: {ZOO / card['file']} ({card['sha256'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
