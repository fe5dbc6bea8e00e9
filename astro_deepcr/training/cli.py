# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astro-deepcr make-dataset`` and ``astro-deepcr train``.

`add_subparser` registers both sub-commands on the ``subparsers`` object of
the main ``astro-deepcr`` parser; each sets ``func`` to a callable taking
the parsed namespace and returning an exit code.
"""

import glob
import os
import sys

__all__ = ["add_subparser", "make_dataset", "train"]

FIELD_TYPES = ("extragalactic", "globular", "resolved")


def add_subparser(subparsers):
    """Register ``make-dataset`` and ``train``."""
    make = subparsers.add_parser(
        "make-dataset", help="labelled 256x256 stamps from exposure stacks (or simulated stacks)",
        description="Build a training dataset (shards + manifest.json, split by field). Each --stack is one "
                    "field: a glob of 3+ aligned HST _flt/_flc files labelled with AstroDrizzle's median/blot/"
                    "driz_cr (S/N 5 / 1.5, grow 1). --simulate N adds N simulated 3-exposure fields labelled "
                    "the same way (directly, the arrays being aligned).")
    make.add_argument("output", help="dataset folder")
    make.add_argument("--stack", action="append", default=[], metavar="GLOB",
                      help="files of one field (repeat for more fields)")
    make.add_argument("--simulate", type=int, default=0, metavar="N", help="number of simulated fields")
    make.add_argument("--field-types", nargs="+", default=list(FIELD_TYPES), choices=FIELD_TYPES)
    make.add_argument("--size", type=int, default=1024, help="side of a simulated exposure (px)")
    make.add_argument("--exposures", type=int, default=3, help="exposures per simulated field")
    make.add_argument("--labels", choices=("stack", "truth"), default="stack",
                      help="simulated fields: labels from the stack builder (default) or the injected truth")
    make.add_argument("--stamp-size", type=int, default=256)
    make.add_argument("--border", type=int, default=128)
    make.add_argument("--split", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VAL", "TEST"))
    make.add_argument("--snr", type=float, nargs=2, default=(5.0, 1.5))
    make.add_argument("--grow", type=int, default=1)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--workdir", default=None, help="AstroDrizzle scratch folder (default OUTPUT/_drizzle)")
    make.set_defaults(func=make_dataset)

    train_parser = subparsers.add_parser(
        "train", help="train a deepCR-mask or -inpaint network (the paper's recipe)",
        description="Train on a dataset from make-dataset; writes OUTPUT/NAME.safetensors + NAME.json (usable as "
                    "DeepCR(mask='OUTPUT/NAME.safetensors')), models.json, log.csv/json, loss.png and a "
                    "checkpoint that a second call resumes from.")
    train_parser.add_argument("dataset")
    train_parser.add_argument("output")
    train_parser.add_argument("--kind", choices=("mask", "inpaint"), default="mask")
    train_parser.add_argument("--name", default=None, help="model name (default: OUTPUT's folder name)")
    train_parser.add_argument("--depth", type=int, default=2)
    train_parser.add_argument("--width", type=int, default=32)
    train_parser.add_argument("--norm", choices=("batch", "weight"), default="batch")
    train_parser.add_argument("--init-from", default=None, metavar="MODEL",
                              help="fine-tune a registered model (e.g. ACS-WFC) or a .safetensors path")
    train_parser.add_argument("--epochs", type=int, default=100)
    train_parser.add_argument("--batch-size", type=int, default=16)
    train_parser.add_argument("--lr", type=float, default=None, help="default 0.005 mask, 0.01 inpaint")
    train_parser.add_argument("--bn-train-epochs", type=int, default=None, help="default 20 mask, 40 inpaint")
    train_parser.add_argument("--bn-recalibrate", type=int, default=0, metavar="N",
                              help="at the BN freeze, recompute the running statistics over N training batches "
                                   "(not in the paper; default 0: off)")
    train_parser.add_argument("--patience", type=int, default=4)
    train_parser.add_argument("--plateau-threshold", type=float, default=0.001)
    train_parser.add_argument("--max-decays", type=int, default=2)
    train_parser.add_argument("--aug-sky", type=float, nargs=2, default=(-0.9, 3.0), metavar=("LOW", "HIGH"))
    train_parser.add_argument("--no-aug-sky", action="store_true")
    train_parser.add_argument("--steps-per-epoch", type=int, default=None)
    train_parser.add_argument("--max-minutes", type=float, default=None)
    train_parser.add_argument("--device", default="cpu")
    train_parser.add_argument("--amp", choices=("auto", "on", "off"), default="auto")
    train_parser.add_argument("--seed", type=int, default=0)
    train_parser.add_argument("--threads", type=int, default=None)
    train_parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    train_parser.add_argument("--quiet", action="store_true")
    train_parser.set_defaults(func=train)


def _simulated_fields(args, writer, splits):
    import numpy as np

    from .simulate import simulate_stack
    from .stacks import stack_cr_masks

    rng = np.random.default_rng(args.seed)
    for k in range(args.simulate):
        field_type = args.field_types[k % len(args.field_types)]
        field_id = f"sim{k:04d}-{field_type}"
        exptime = float(rng.choice([300.0, 500.0, 1000.0]))
        sky = float(rng.uniform(20, 150)) * exptime / 500.0
        stack = simulate_stack(args.exposures, (args.size, args.size), field_type, exptime,
                               seed=[args.seed, k], sky=sky)
        if args.labels == "stack":
            masks, _ = stack_cr_masks([e["image"] for e in stack], stack[0]["read_noise"], snr=args.snr,
                                      grow=args.grow)
        else:
            masks = [e["cr_mask"] for e in stack]
        count = writer.add_field(field_id, splits[field_id],
                                 [dict(e, cr_mask=m) for e, m in zip(stack, masks, strict=True)])
        print(f"{field_id}: {count} stamps -> {splits[field_id]}")


def _real_fields(args, writer, splits, groups):
    import numpy as np

    from .stacks import astrodrizzle_cr_masks, read_flc_chips

    workdir = args.workdir or os.path.join(args.output, "_drizzle")
    for field_id, files in groups.items():
        masks = astrodrizzle_cr_masks(files, os.path.join(workdir, field_id), snr=f"{args.snr[0]} {args.snr[1]}",
                                      grow=args.grow)
        exposures = []
        for path, chip_masks in zip(files, masks, strict=True):
            for (sci, bad, _), cr_mask in zip(read_flc_chips(path), chip_masks, strict=True):
                sky = float(np.median(sci[~bad])) if (~bad).any() else 0.0
                exposures.append({"image": sci, "cr_mask": cr_mask, "bad": bad, "sky": sky})
        count = writer.add_field(field_id, splits[field_id], exposures)
        print(f"{field_id}: {count} stamps -> {splits[field_id]}")


def make_dataset(args):
    """``make-dataset``: returns an exit code."""
    from .dataset import DatasetWriter, split_fields

    groups = {}
    for k, pattern in enumerate(args.stack):
        files = sorted(glob.glob(pattern))
        if len(files) < 3:
            print(f"make-dataset: --stack {pattern!r} matches {len(files)} files; need 3+", file=sys.stderr)
            return 2
        groups[f"field{k:03d}-{os.path.basename(files[0]).split('_')[0]}"] = files
    if not groups and args.simulate <= 0:
        print("make-dataset: give --stack GLOB (repeatable) and/or --simulate N", file=sys.stderr)
        return 2
    field_ids = list(groups) + [f"sim{k:04d}-{args.field_types[k % len(args.field_types)]}"
                                for k in range(args.simulate)]
    splits = split_fields(field_ids, tuple(args.split), seed=args.seed)
    source = f"stack median, S/N {args.snr[0]}/{args.snr[1]}, grow {args.grow}"
    if args.simulate and args.labels == "truth":
        source += "; simulated fields: injected truth"
    with DatasetWriter(args.output, args.stamp_size, args.border, label_source=source) as writer:
        if groups:
            _real_fields(args, writer, splits, groups)
        if args.simulate:
            _simulated_fields(args, writer, splits)
    counts = {split: sum(s["count"] for s in shards) for split, shards in writer.manifest["splits"].items()}
    print(f"wrote {args.output}/manifest.json: {counts}")
    return 0


def train(args):
    """``train``: returns an exit code."""
    import torch

    from ..validation import check_train_options
    from .trainer import TrainConfig, Trainer

    name = args.name or os.path.basename(os.path.normpath(args.output))
    try:  # usage errors before the output folder is created (issue #28)
        check_train_options(dataset=args.dataset, output=args.output, name=name, kind=args.kind, depth=args.depth,
                            width=args.width, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            steps_per_epoch=args.steps_per_epoch,
                            max_minutes=args.max_minutes, device=args.device, init_from=args.init_from)
    except (ValueError, TypeError) as exc:
        print(f"train: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(
        kind=args.kind, depth=args.depth, width=args.width, norm=args.norm, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, bn_train_epochs=args.bn_train_epochs,
        bn_recalibrate=args.bn_recalibrate,
        plateau_patience=args.patience, plateau_threshold=args.plateau_threshold, max_decays=args.max_decays,
        aug_sky=None if args.no_aug_sky else tuple(args.aug_sky), steps_per_epoch=args.steps_per_epoch,
        max_minutes=args.max_minutes, seed=args.seed, device=args.device,
        amp=None if args.amp == "auto" else args.amp == "on", init_from=args.init_from,
        name=name, progress=False if args.quiet else None)
    path = Trainer(args.dataset, args.output, config, resume=not args.no_resume).train()
    print(f"model written to {path}; use DeepCR(mask={path!r})")
    return 0
