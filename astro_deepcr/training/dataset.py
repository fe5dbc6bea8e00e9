# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Labelled training stamps on disk, split by field, and a torch Dataset.

Format (``format: 1``) of a dataset folder::

    manifest.json
    <split>/<field_id>.image.npy   float32 (N, S, S)  electrons, sky included
    <split>/<field_id>.cr.npy      uint8   (N, S, S)  1 = cosmic ray
    <split>/<field_id>.bad.npy     uint8   (N, S, S)  1 = bad pixel (never a CR, excluded from losses)
    <split>/<field_id>.sky.npy     float32 (N,)       sky level of each stamp (electrons)

One shard per field; ``split`` is ``train``, ``validation`` or ``test``.
All stamps of a field land in one split, never in two.  ``manifest.json``
holds ``format``, ``stamp_size``, ``border``, ``units``, ``label_source``
and, per split, the list of shards ``{"field": id, "prefix": path, "count": N}``.
Every ``.npy`` file is opened with ``mmap_mode="r"``.
"""

import json
import os

import numpy as np

__all__ = ["stamp_corners", "split_fields", "DatasetWriter", "load_split", "StampDataset", "SPLITS"]

SPLITS = ("train", "validation", "test")
FORMAT = 1


def stamp_corners(shape, stamp_size=256, border=128):
    """Top-left corners of non-overlapping ``stamp_size`` stamps inside a ``border``."""
    ny, nx = shape
    ys = range(border, ny - border - stamp_size + 1, stamp_size)
    xs = range(border, nx - border - stamp_size + 1, stamp_size)
    return [(y, x) for y in ys for x in xs]


def split_fields(field_ids, fractions=(0.8, 0.1, 0.1), seed=0):
    """Assign whole fields to splits: ``{field_id: split}``.

    Every split with a positive fraction gets at least one field when there
    are enough fields; the rest follow the fractions in a seeded shuffle.
    """
    ids = sorted(set(field_ids))
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    counts = [int(round(f * len(ids))) for f in fractions]
    for k in (2, 1):  # keep one field for validation and test where possible
        if fractions[k] > 0 and counts[k] == 0 and len(ids) - sum(counts[1:]) > 1:
            counts[k] = 1
    counts[0] = len(ids) - counts[1] - counts[2]
    out, start = {}, 0
    for split, count in zip(SPLITS, counts, strict=True):
        for field in order[start:start + count]:
            out[field] = split
        start += count
    return out


class DatasetWriter:
    """Write stamps of whole fields into a dataset folder (see the module docstring).

    Parameters
    ----------
    root : str
        Output folder (created).
    stamp_size, border : int
        Stamp side and the skipped frame border in pixels.
    label_source : str
        How the CR masks were made (recorded in the manifest).
    """

    def __init__(self, root, stamp_size=256, border=128, label_source="", units="electron"):
        self.root = str(root)
        self.stamp_size, self.border = int(stamp_size), int(border)
        self.manifest = {"format": FORMAT, "stamp_size": self.stamp_size, "border": self.border,
                         "units": units, "label_source": label_source, "splits": {s: [] for s in SPLITS}}
        os.makedirs(self.root, exist_ok=True)

    def add_field(self, field_id, split, exposures):
        """Cut stamps from the exposures of one field and write its shard.

        ``exposures``: iterable of dicts with ``image``, ``cr_mask``, ``sky``
        and optionally ``bad``. Returns the number of stamps written.
        """
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        field_id = str(field_id)
        if any(shard["field"] == field_id for shards in self.manifest["splits"].values() for shard in shards):
            raise ValueError(f"field {field_id!r} is already in the dataset")
        size = self.stamp_size
        images, crs, bads, skies = [], [], [], []
        for exposure in exposures:
            image = np.asarray(exposure["image"], dtype=np.float32)
            bad = np.zeros(image.shape, bool) if exposure.get("bad") is None else np.asarray(exposure["bad"], bool)
            for y, x in stamp_corners(image.shape, size, self.border):
                cut = (slice(y, y + size), slice(x, x + size))
                images.append(image[cut])
                crs.append(np.asarray(exposure["cr_mask"], bool)[cut] & ~bad[cut])
                bads.append(bad[cut])
                skies.append(float(exposure["sky"]))
        if not images:
            return 0
        os.makedirs(os.path.join(self.root, split), exist_ok=True)
        prefix = os.path.join(split, field_id)
        base = os.path.join(self.root, prefix)
        np.save(base + ".image.npy", np.stack(images))
        np.save(base + ".cr.npy", np.stack(crs).astype(np.uint8))
        np.save(base + ".bad.npy", np.stack(bads).astype(np.uint8))
        np.save(base + ".sky.npy", np.asarray(skies, dtype=np.float32))
        self.manifest["splits"][split].append({"field": field_id, "prefix": prefix, "count": len(images)})
        return len(images)

    def close(self):
        """Write ``manifest.json``; return its path."""
        path = os.path.join(self.root, "manifest.json")
        with open(path, "w") as stream:
            json.dump(self.manifest, stream, indent=1)
        return path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_manifest(root):
    with open(os.path.join(root, "manifest.json")) as stream:
        manifest = json.load(stream)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{root}: unknown dataset format {manifest.get('format')!r}")
    return manifest


def load_split(root, split):
    """Memory-mapped arrays of one split: dict of lists per shard (``image``, ``cr``, ``bad``, ``sky``, ``field``)."""
    manifest = read_manifest(root)
    out = {"image": [], "cr": [], "bad": [], "sky": [], "field": []}
    for shard in manifest["splits"][split]:
        base = os.path.join(root, shard["prefix"])
        for key in ("image", "cr", "bad", "sky"):
            out[key].append(np.load(f"{base}.{key}.npy", mmap_mode="r"))
        out["field"].append(shard["field"])
    return out


class StampDataset:
    """A torch-style Dataset over one split.

    Items are dicts of float32 tensors of shape ``(1, S, S)``: ``image``
    (sky-augmented, divided by ``scale``), ``cr`` (0/1), ``bad`` (0/1);
    for ``kind="inpaint"`` also ``inpaint_mask``: the union of 1-9 CR masks
    of *other* stamps, minus the stamp's own CR and bad pixels (the pixels
    the inpainting loss is computed on).

    Parameters
    ----------
    root : str
    split : {"train", "validation", "test"}
    kind : {"mask", "inpaint"}
    aug_sky : (float, float) or None
        Add ``u * sky`` with ``u`` uniform in ``[aug_sky[0], aug_sky[1]]``
        (deepCR: ``(-0.9, 3)``); None: no augmentation.
    n_masks : (int, int)
        Range of the number of borrowed CR masks (inpaint).
    scale : float
        Divisor applied to the image (the model's ``scale``).
    seed : int
        Augmentation is a pure function of ``(seed, epoch, index)``; see `set_epoch`.
    """

    def __init__(self, root, split, kind="mask", aug_sky=(-0.9, 3.0), n_masks=(1, 9), scale=1.0, seed=0):
        import torch  # noqa: F401  (fail early without torch)

        if kind not in ("mask", "inpaint"):
            raise ValueError(f"kind must be 'mask' or 'inpaint', not {kind!r}")
        self.arrays = load_split(root, split)
        self.kind, self.aug_sky, self.n_masks = kind, aug_sky, n_masks
        self.scale, self.seed, self.epoch = float(scale), int(seed), 0
        self._index = [(s, i) for s, arr in enumerate(self.arrays["sky"]) for i in range(len(arr))]
        self.fields = sorted(set(self.arrays["field"]))

    def __len__(self):
        return len(self._index)

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def _get(self, key, index):
        shard, item = self._index[index]
        return np.asarray(self.arrays[key][shard][item])

    def __getitem__(self, index):
        import torch

        rng = np.random.default_rng((self.seed, self.epoch, index))
        image = self._get("image", index).astype(np.float32)
        sky = float(self._get("sky", index))
        if self.aug_sky is not None:
            image = image + np.float32(rng.uniform(*self.aug_sky) * sky)
        cr = self._get("cr", index).astype(np.float32)
        bad = self._get("bad", index).astype(np.float32)
        item = {"image": torch.from_numpy(image / np.float32(self.scale))[None],
                "cr": torch.from_numpy(cr)[None], "bad": torch.from_numpy(bad)[None]}
        if self.kind == "inpaint":
            item["inpaint_mask"] = torch.from_numpy(self.inpaint_mask(index, rng, cr, bad))[None]
        return item

    def inpaint_mask(self, index, rng, own_cr, bad):
        """Union of CR masks of 1-9 other stamps, excluding ``own_cr`` and ``bad`` pixels."""
        count = int(rng.integers(self.n_masks[0], self.n_masks[1] + 1))
        others = [k for k in rng.choice(len(self), size=min(count + 1, len(self)), replace=False) if k != index]
        mask = np.zeros(own_cr.shape, bool)
        for k in others[:count]:
            mask |= self._get("cr", int(k)).astype(bool)
        return (mask & (own_cr == 0) & (bad == 0)).astype(np.float32)
