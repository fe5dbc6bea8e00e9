# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Weights files: recognise, verify, read and write safetensors; build the network a spec describes.

Weights are read only through `safetensors` after their SHA-256 checksum has
been verified; a pickle is never loaded. This module knows nothing of the
registry (`astro_deepcr.zoo`): its functions take a spec with the fields
``name``, ``kind``, ``depth``, ``width``, ``norm``, ``file`` and ``sha256``.
torch and safetensors load only when a file is read or written.
"""

import hashlib
import os
from pathlib import Path

__all__ = ["ModelFileError", "file_sha256", "weights_file_format", "read_weights", "build_network", "save_network"]


class ModelFileError(ValueError):
    """A weights file is missing, corrupt, of the wrong format or architecture."""


def file_sha256(path):
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_file_format(path):
    """What a weights file is, judged by its own structure (nothing is parsed or loaded).

    Returns
    -------
    file_format : {"safetensors", "pickle", "zip", "unknown"}
        ``"safetensors"``: an 8-byte little-endian header length, then a JSON
        header starting with ``{`` that ends within the file. ``"zip"``: a
        zip archive (what `torch.save` writes). ``"pickle"``: the pickle
        protocol marker (``0x80`` then protocol 2 to 5; legacy `torch.save`).

    Notes
    -----
    safetensors is recognised first: its first byte is the low byte of the
    header length, which is ``0x80`` for every header 128 bytes modulo 256
    long, so a first byte of ``0x80`` alone says nothing.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as stream:
        head = stream.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        header_length = int.from_bytes(head[:8], "little")
        if 2 <= header_length <= size - 8:
            return "safetensors"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    return "unknown"


def read_weights(spec):
    """The verified tensors of ``spec.file`` (CPU), or a `ModelFileError` naming the model and the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(spec.file)
    if not path.is_file():
        raise ModelFileError(f"model {spec.name!r}: weights file {path} not found")
    file_format = weights_file_format(path)
    if file_format in ("pickle", "zip"):
        raise ModelFileError(
            f"model {spec.name!r}: {path} looks like a pickle / torch.save file; only safetensors "
            "weights are loaded (convert it with tools/convert_deepcr_zoo.py)"
        )
    digest = file_sha256(path)
    if digest != spec.sha256:
        raise ModelFileError(
            f"model {spec.name!r}: checksum mismatch for {path} (expected sha256 {spec.sha256}, "
            f"got {digest}); the file is corrupt, truncated or not the registered weights"
        )
    if file_format != "safetensors":
        raise ModelFileError(
            f"model {spec.name!r}: cannot read {path} as safetensors: it does not start with a header length "
            "and a JSON header within the file"
        )
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"model {spec.name!r}: cannot read {path} as safetensors: {exc}") from None


def build_network(spec):
    """An untrained network with the architecture of ``spec``."""
    from .nets import UNet

    return UNet(
        in_channels=1 if spec.kind == "mask" else 2,
        depth=spec.depth,
        width=spec.width,
        norm=spec.norm,
        sigmoid=spec.kind == "mask",
    )


def save_network(net, path, metadata=None):
    """Write ``net``'s weights to ``path`` as safetensors; return the sha256."""
    from safetensors.torch import save_file

    state = {key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()}
    tmp = Path(str(path) + ".tmp")
    save_file(state, str(tmp), metadata={k: str(v) for k, v in (metadata or {}).items()})
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return file_sha256(path)
