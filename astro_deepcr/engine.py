# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Seam-free tiled inference.

The image is padded (top and left, mirroring its first rows and columns, where
deepCR pads zeros: see `_mirrored`) to a multiple of ``2**depth`` and cut into
square tiles whose origins lie on that grid. Each tile is extended by a halo
at least as wide as the network's receptive radius, and clipped to the padded
image, so the zero padding a tile's convolutions see at its clipped edges is
exactly the padding the whole image would see. The core of every tile
therefore equals whole-image inference to float rounding, and peak memory is
set by the tile size, not the image size.
"""

import contextlib
import functools
import math
import os
import sys

import numpy as np

from ._lazy import LazyModule
from .conf import conf

# imported on first use: importing the package, asking the CLI for help, choosing a model load no torch
torch = LazyModule("torch")

__all__ = [
    "resolve_device",
    "resolve_precision",
    "native_bfloat16",
    "prepare_network",
    "run_tiled",
    "check_precision",
    "show_progress",
    "BACKENDS",
    "resolve_backend",
    "network_backend",
    "backend_of",
    "backend_label",
    "bf16_validated",
    "tile_layout",
    "halo_for",
    "PRECISIONS",
    "DEFAULT_TILE_SIZE",
]

_PRECISIONS = {"float32": None, "float16": "float16", "bfloat16": "bfloat16"}  # torch dtype names
#: Accepted ``precision`` values; ``"auto"`` resolves to one of the others.
PRECISIONS = ("auto", *_PRECISIONS)
#: Accepted ``backend`` values; ``"auto"`` is OpenVINO on CPU where installed, else torch.
BACKENDS = ("auto", "torch", "openvino")
#: Tile core size (px) per runtime where neither the call nor ``conf.tile_size`` sets one. OpenVINO
#: runs 1024 tiles 6-7 % faster than 512 (fewer halo pixels; peak memory 1.1 instead of 0.7 GB on a
#: 2048 x 2048 frame, docs/performance.rst); torch gains nothing from larger tiles on the CPU.
DEFAULT_TILE_SIZE = {"torch": 512, "openvino": 1024}
#: deepCR spells devices "CPU" and "GPU".
_DEVICE_ALIASES = {"gpu": "cuda"}


def resolve_device(device=None):
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a `torch.device` into a `torch.device`.

    Case does not matter, and deepCR's spellings ``"CPU"`` and ``"GPU"``
    (``"GPU:N"``) are accepted (``"GPU"`` is ``"cuda"``).

    Raises
    ------
    ValueError
        Unknown device string, or a CUDA device asked for where none is available.
    """
    if device is None:
        device = conf.device
    if isinstance(device, torch.device):
        spec = device
    else:
        if not isinstance(device, str):
            raise TypeError(f"device must be a string or torch.device, not {type(device).__name__}")
        name = device.strip().lower()
        kind, colon, index = name.partition(":")
        name = _DEVICE_ALIASES.get(kind, kind) + colon + index
        if name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            spec = torch.device(name)
        except RuntimeError:
            raise ValueError(
                f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' (or 'gpu') or 'cuda:N'"
            ) from None
    if spec.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was requested but CUDA is not available; use 'cpu' or 'auto'")
        if spec.index is not None and spec.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif spec.type != "cpu":
        raise ValueError(f"unsupported device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return spec


def native_bfloat16(device):
    """Whether ``device`` computes bfloat16 natively (not by emulation).

    CPU: torch's own CPU feature detection (AVX512-BF16 or AMX tiles; the CPU
    model name is never consulted), unless the environment variable
    ``ASTRO_DEEPCR_NATIVE_BF16`` is ``1`` (pretend yes) or ``0`` (pretend
    no): a testing knob that lets any machine run the ``auto`` paths of the
    other CPU kind. CUDA: `torch.cuda.is_bf16_supported`
    without emulation (compute capability 8.0 and later).
    """
    device = resolve_device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    return _cpu_native_bfloat16()


#: Testing knob: ``ASTRO_DEEPCR_NATIVE_BF16=1`` makes `native_bfloat16` say yes (``0``: no) on any CPU, so
#: ``precision="auto"`` behaves as on a CPU with native bfloat16 (CI runs the precision tests once so).
NATIVE_BF16_ENV = "ASTRO_DEEPCR_NATIVE_BF16"


def _cpu_native_bfloat16():
    forced = os.environ.get(NATIVE_BF16_ENV, "").strip()
    if forced:
        if forced not in ("0", "1"):
            raise ValueError(f"{NATIVE_BF16_ENV} must be '0' or '1', not {forced!r}")
        return forced == "1"
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if check is not None)


def resolve_precision(precision=None, device=None, validated=False):
    """The precision a run actually uses.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16", "float16"}, optional
        Requested precision; default ``conf.precision``. ``"auto"`` is
        ``"bfloat16"`` where the device computes it natively *and* the
        model passed its bfloat16 validation (``validated``), else
        ``"float32"``.
    device : str or `torch.device`, optional
    validated : bool
        The model's card says bfloat16 agrees with float32 (``auto_precision``).

    Returns
    -------
    precision : {"float32", "bfloat16", "float16"}
    """
    precision = conf.precision if precision is None else precision
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, not {precision!r}")
    if precision != "auto":
        return precision
    return "bfloat16" if validated and native_bfloat16(device) else "float32"


def resolve_backend(backend=None, device=None):
    """The inference runtime a run actually uses: ``"torch"`` or ``"openvino"``.

    Parameters
    ----------
    backend : {"auto", "torch", "openvino"}, optional
        Default ``conf.backend``. ``"auto"``: OpenVINO on the CPU where the
        optional ``openvino`` package is installed (``pip install
        astro_deepcr[openvino]``), torch otherwise and on CUDA.
    device : str or `torch.device`, optional

    Raises
    ------
    ValueError
        Unknown backend; OpenVINO asked for on CUDA or where it is not installed.
    """
    from . import openvino_backend

    backend = conf.backend if backend is None else backend
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, not {backend!r}")
    device = resolve_device(device)
    if backend == "auto":
        return "openvino" if device.type == "cpu" and openvino_backend.available() else "torch"
    if backend == "openvino":
        if device.type != "cpu":
            raise ValueError(f"the OpenVINO backend runs on the CPU only, not on {device}; use backend='torch'")
        if not openvino_backend.available():
            raise ValueError("backend 'openvino' needs the openvino package: pip install 'astro_deepcr[openvino]'")
    return backend


def network_backend(backend, device, precision):
    """The backend `astro_deepcr.zoo.load_network` uses for a resolved ``precision``: as `resolve_backend`,
    but ``"auto"`` keeps OpenVINO to what it computes natively (it would silently compute float32 instead of
    bfloat16 on a CPU without native bfloat16, and never runs float16): torch there."""
    from . import openvino_backend

    requested = conf.backend if backend is None else backend
    chosen = resolve_backend(requested, device)
    if chosen == "openvino" and precision not in openvino_backend.native_precisions():
        if requested == "openvino":
            raise ValueError(f"OpenVINO does not compute {precision} on this CPU; use backend='torch'")
        return "torch"
    return chosen


def bf16_validated(spec, backend="torch"):
    """Whether ``spec``'s card records a passed bfloat16 validation for ``backend``.

    torch: ``auto_precision == "bfloat16"``. Another backend: a
    ``bf16_validation["backends"][backend]`` entry with ``"passed": true``
    (``benchmarks/validate_precision.py --backend openvino --write``, run on a
    CPU with native bfloat16). This is the ``validated`` of `resolve_precision`.
    """
    if backend == "torch":
        return spec.auto_precision == "bfloat16"
    entry = (spec.bf16_validation or {}).get("backends", {}).get(backend, {})
    return entry.get("passed") is True


def backend_of(net):
    """``"openvino"`` for a network from the OpenVINO backend, else ``"torch"``."""
    return getattr(type(net), "backend", "torch") if not isinstance(net, torch.nn.Module) else "torch"


def backend_label(net):
    """The runtime with its version, for logs and headers: ``"torch 2.13.0"``, ``"openvino 2026.4.1"``."""
    if backend_of(net) == "openvino":
        from . import openvino_backend

        return f"openvino {openvino_backend.version()}"
    return f"torch {torch.__version__.split('+')[0]}"


def prepare_network(net, device, precision="float32"):
    """An inference copy of ``net`` on ``device`` (see `astro_deepcr.nets.inference_copy`).

    Under a reduced ``precision`` the `~astro_deepcr.nets.FLOAT32_LAYERS` stay
    in float32. Networks of registered models come ready from
    `astro_deepcr.zoo.load_network` (cached); this is for networks of your own.
    """
    from .nets import FLOAT32_LAYERS, inference_copy

    reduced = precision not in ("float32", None)
    return inference_copy(net, FLOAT32_LAYERS if reduced else ()).to(device)


def halo_for(depth):
    """Halo width: the receptive radius rounded up to the tile grid ``2**depth``."""
    from .nets import receptive_radius

    align = 2**depth
    return math.ceil(receptive_radius(depth) / align) * align


def tile_layout(shape, depth, tile_size):
    """Tiles over an image of ``shape``, in padded coordinates.

    Returns ``(pad, padded_shape, tiles)`` where each tile is
    ``(core_y0, core_y1, core_x0, core_x1, in_y0, in_y1, in_x0, in_x1)``.
    """
    align = 2**depth
    height, width = shape
    pad = (-height % align, -width % align)
    padded = (height + pad[0], width + pad[1])
    size = max(align, math.ceil(tile_size / align) * align)
    halo = halo_for(depth)
    tiles = []
    for y0 in range(0, padded[0], size):
        y1 = min(y0 + size, padded[0])
        for x0 in range(0, padded[1], size):
            x1 = min(x0 + size, padded[1])
            tiles.append(
                (y0, y1, x0, x1, max(0, y0 - halo), min(padded[0], y1 + halo),
                 max(0, x0 - halo), min(padded[1], x1 + halo))
            )
    return pad, padded, tiles


def _cut(inputs, pad, box):
    """The padded-coordinate box of ``inputs`` (C, H, W); the alignment strip above and left of the image mirrors
    its first rows and columns (`_mirrored`)."""
    y0, y1, x0, x1 = box
    if y0 >= pad[0] and x0 >= pad[1]:
        return np.array(inputs[:, y0 - pad[0]:y1 - pad[0], x0 - pad[1]:x1 - pad[1]], dtype=np.float32)
    rows = _mirrored(np.arange(y0, y1) - pad[0], inputs.shape[1])
    cols = _mirrored(np.arange(x0, x1) - pad[1], inputs.shape[2])
    return inputs[:, rows[:, None], cols[None, :]].astype(np.float32, copy=False)


def _mirrored(index, length):
    """Image rows (or columns) for padded ones, mirrored about the edge row as ``numpy.pad(mode="reflect")`` does
    (row -k is row k: the edge row is not repeated).

    deepCR pads the alignment strip with zeros, a cliff beside the first rows and columns that no training crop
    had (they were multiples of ``2**depth``): on WFPC2's chips cut to 499 x 499 px (one padded row and column)
    ``ground`` flagged 1490 pixels in the two outermost rows and columns of four cut-outs where the same pixels
    inside larger cut-outs get 873; with the mirror, 1232. A wider mirrored margin on every side made it worse
    (8-32 px: 1393), so the other edges keep the convolutions' own zero padding, as in training (aligned 500 px
    cut-outs: 1071 against 912, unchanged). Measured in session 36: ``docs/architecture.rst``, "Frame edges".
    """
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    index = np.abs(index) % period
    return np.where(index >= length, period - index, index)


@contextlib.contextmanager
def _threads(count):
    if not count:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def show_progress(progress=None, stream=None):
    """Whether a progress bar is drawn: ``True`` always, ``False`` never, ``None`` only where a person
    watches (``stream``, default `sys.stderr`, is an interactive terminal), so logs never get a bar."""
    if progress is not None:
        return bool(progress)
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def _progress(total, enabled, desc):
    from tqdm.auto import tqdm

    if not show_progress(enabled):
        return contextlib.nullcontext(_NoBar())
    # an interactive run: appear only when it lasts longer than a second
    return tqdm(total=total, desc=desc, unit="tile", delay=1.0 if enabled is None else 0.0, leave=False)


class _NoBar:
    def update(self, count):
        pass


def _inference_mode(function):
    """``@torch.inference_mode()`` applied when ``function`` runs, so that defining it imports no torch."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with torch.inference_mode():
            return function(*args, **kwargs)

    return wrapper


def check_precision(precision):
    """``precision`` if it is a resolved one (``"float32"``, ``"bfloat16"``, ``"float16"``), else ValueError."""
    if precision not in _PRECISIONS:
        hint = " (resolve 'auto' first with astro_deepcr.engine.resolve_precision)" if precision == "auto" else ""
        raise ValueError(f"precision must be one of {list(_PRECISIONS)}, not {precision!r}{hint}")
    return precision


@_inference_mode
def run_tiled(net, inputs, *, tile_size=None, batch_size=None, device=None, precision="float32", threads=None,
              progress=None, desc="deepCR"):
    """Run ``net`` over a (C, H, W) float32 array in seam-free tiles.

    Parameters
    ----------
    net : `astro_deepcr.nets.UNet` or `astro_deepcr.openvino_backend.OpenVINONetwork`
        Network from `astro_deepcr.zoo.load_network` (torch or OpenVINO, see
        `resolve_backend`) or `prepare_network` (any module with a ``depth``
        attribute works).
    inputs : ndarray, shape (C, H, W)
        Network input, already normalised; any H, W >= 1.
    tile_size : int, optional
        Tile core size; defaults to ``conf.tile_size``, and where that is 0
        to `DEFAULT_TILE_SIZE` of the network's runtime.
    batch_size : int, optional
        Tiles per forward call; defaults to ``conf.batch_size`` (0: 1 on CPU, 8 on GPU).
    device : str or `torch.device`, optional
    precision : {"float32", "float16", "bfloat16"}
        The resolved precision (`resolve_precision` decides ``"auto"``, in
        one place, from the model's card): autocast precision, float32
        disables autocast.
    threads : int, optional
        CPU threads for this call; defaults to ``conf.threads`` (0: unchanged).
    progress : bool or None
        Tile progress bar: True always, False never, None only where
        `sys.stderr` is an interactive terminal (and the run lasts over a
        second); never in logs.

    Returns
    -------
    output : ndarray, shape (H, W), float32

    Raises
    ------
    ValueError
        ``precision`` not resolved (``"auto"``) or unknown; bad ``tile_size``.
    """
    device = resolve_device(device)
    precision = check_precision(precision)
    tile_size = int(tile_size or conf.tile_size or DEFAULT_TILE_SIZE[backend_of(net)])
    if tile_size < 1:
        raise ValueError(f"tile_size must be a positive integer, not {tile_size}")
    batch_size = int(batch_size or conf.batch_size or (8 if device.type == "cuda" else 1))
    threads = threads if threads is not None else conf.threads
    if isinstance(net, torch.nn.Module):
        if next(net.parameters()).device != device:
            net = net.to(device)
        forward = _torch_forward(net, device)
    else:  # a compiled runtime (astro_deepcr.openvino_backend): its precision is fixed when it is compiled
        if device.type != "cpu":
            raise ValueError(f"a {backend_of(net)} network runs on the CPU, not on {device}")
        if net.precision != precision:
            raise ValueError(f"this {backend_of(net)} network runs {net.precision}, not {precision}; load it with "
                             f"precision={precision!r}")
        forward = functools.partial(net, threads=int(threads or torch.get_num_threads()))
    inputs = np.asarray(inputs, dtype=np.float32)
    pad, _, tiles = tile_layout(inputs.shape[1:], net.depth, tile_size)
    output = np.empty(inputs.shape[1:], dtype=np.float32)
    # tiles of equal input shape can share one forward call
    groups = {}
    for tile in tiles:
        groups.setdefault((tile[5] - tile[4], tile[7] - tile[6]), []).append(tile)
    autocast = (
        torch.autocast(device.type, dtype=getattr(torch, _PRECISIONS[precision]))
        if _PRECISIONS[precision] and isinstance(net, torch.nn.Module) else contextlib.nullcontext()
    )
    with _threads(threads), autocast, _progress(len(tiles), progress, desc) as bar:
        for group in groups.values():
            for start in range(0, len(group), batch_size):
                batch = group[start:start + batch_size]
                result = forward(np.stack([_cut(inputs, pad, tile[4:]) for tile in batch]))[:, 0]
                for tile, values in zip(batch, result):
                    _paste(output, values, tile, pad)
                bar.update(len(batch))
    return output


def _torch_forward(net, device):
    def forward(stack):
        tensor = torch.from_numpy(stack).to(device).contiguous(memory_format=torch.channels_last)
        return net(tensor).float().cpu().numpy()

    return forward


def _paste(output, values, tile, pad):
    """Write the part of a tile's core that lies inside the unpadded image."""
    y0, y1, x0, x1, iy0, _, ix0, _ = tile
    oy0, ox0 = max(y0, pad[0]), max(x0, pad[1])
    if oy0 >= y1 or ox0 >= x1:
        return
    output[oy0 - pad[0]:y1 - pad[0], ox0 - pad[1]:x1 - pad[1]] = values[oy0 - iy0:y1 - iy0, ox0 - ix0:x1 - ix0]
