# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The model registry: names to `ModelSpec` (the model cards), and the one cache of loaded networks.

The built-in models live in the importable package ``astro_deepcr_models``
(``models.json`` plus one ``.safetensors`` file per model). Reading and
writing the weights files themselves is `astro_deepcr.weights` (re-exported
here); a pickle is never loaded.
"""

import dataclasses
import json
import os
import threading
from pathlib import Path

from .conf import conf
from .registry_checks import check_name_free, spec_from_card, specs_from_index
from .weights import ModelFileError, build_network, file_sha256, save_network, weights_file_format
from .weights import read_weights as _read_weights

__all__ = [
    "ModelSpec",
    "ModelFileError",
    "list_models",
    "get_model",
    "model_info",
    "register_model",
    "register_models_from",
    "unregister_model",
    "GENERIC_DEFAULT_MODEL",
    "UNCARDED_CAMERA_MODELS",
    "load_network",
    "clear_network_cache",
    "save_network",
    "file_sha256",
    "weights_file_format",
    "build_network",
]

_KINDS = ("mask", "inpaint")
_NORMS = ("batch", "weight")
_NORMALISATIONS = ("scale", "meanstd")
_UNITS = ("electron", "adu")  # what units.conversion_factor converts to


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build, load and use one network.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"ACS-WFC"``. Wherever a model name is taken, a
        path to a ``.safetensors`` file with a ``<stem>.json`` card (these
        fields) beside it works too.
    kind : {"mask", "inpaint"}
        deepCR-mask (probability of CR) or deepCR-inpaint (clean value).
    depth, width : int
        UNet depth and base width (the ``D-C`` of the model name).
    file : str
        Path of the ``.safetensors`` weights.
    sha256 : str
        Hex SHA-256 of the weights file; verified on every load.
    norm : {"batch", "weight"}
        BatchNorm or weight-normalised convolutions.
    normalisation : {"scale", "meanstd"}
        ``"scale"``: the network sees ``image / scale``. ``"meanstd"``: it
        sees ``(image - mean) / std`` with the mean and standard deviation of
        the whole image (the published WFC3/UVIS model).
    scale : float
        Divisor for ``normalisation="scale"``.
    threshold : float or None
        Default probability threshold of a mask model.
    units : str
        Units the model expects (``"electron"`` or ``"adu"``).
    instrument, detector : str
    filters : tuple of str
    description, training_data, provenance, citation, license : str
    metrics : dict
        Measured figures (see the model card).
    auto_precision : {"float32", "bfloat16"}
        For an inpainting model, the precision ``precision="auto"`` may use
        where the device computes bfloat16 natively: ``"bfloat16"`` only for
        a model whose bfloat16 output passed validation against its float32
        one (``benchmarks/validate_precision.py``; numbers in
        ``bf16_validation``). A mask model's ``"auto"`` is decided by its
        validation on the machine that runs it (`astro_deepcr.bf16_check`),
        whatever this field says.
    bf16_validation : dict
        The figures of that validation.
    """

    name: str
    kind: str
    depth: int
    width: int
    file: str
    sha256: str
    norm: str = "batch"
    normalisation: str = "scale"
    scale: float = 1.0
    threshold: float | None = 0.5
    units: str = "electron"
    instrument: str = ""
    detector: str = ""
    filters: tuple = ()
    description: str = ""
    training_data: str = ""
    provenance: str = ""
    citation: str = ""
    license: str = ""
    metrics: dict = dataclasses.field(default_factory=dict)
    auto_precision: str = "float32"
    bf16_validation: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"model {self.name!r}: kind must be one of {_KINDS}, not {self.kind!r}")
        if self.norm not in _NORMS:
            raise ValueError(f"model {self.name!r}: norm must be one of {_NORMS}, not {self.norm!r}")
        if self.normalisation not in _NORMALISATIONS:
            raise ValueError(
                f"model {self.name!r}: normalisation must be one of {_NORMALISATIONS}, not {self.normalisation!r}"
            )
        if int(self.depth) < 1 or int(self.width) < 1:
            raise ValueError(f"model {self.name!r}: depth and width must be positive integers")
        if not self.scale > 0:
            raise ValueError(f"model {self.name!r}: scale must be positive, not {self.scale!r}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"model {self.name!r}: threshold must lie in [0, 1], not {self.threshold!r}")
        if self.units not in _UNITS:  # else every frame's conversion would fail, blaming the frame's BUNIT
            raise ValueError(f"model {self.name!r}: units must be one of {_UNITS}, not {self.units!r}")
        if self.auto_precision not in ("float32", "bfloat16"):
            raise ValueError(
                f"model {self.name!r}: auto_precision must be 'float32' or 'bfloat16', not {self.auto_precision!r}"
            )
        object.__setattr__(self, "filters", tuple(self.filters))

    @property
    def arch(self):
        """Architecture label in the paper's ``D-C`` notation."""
        return f"{self.depth}-{self.width}"

    def to_dict(self):
        """JSON-ready dictionary (the ``file`` stays as given)."""
        out = dataclasses.asdict(self)
        out["filters"] = list(self.filters)
        return out

    def card(self):
        """The model card as reStructuredText-like plain text."""
        lines = [self.name, "=" * len(self.name), ""]
        if self.description:
            lines += [self.description, ""]
        rows = [
            ("kind", f"deepCR-{self.kind}"),
            ("architecture", f"UNet {self.arch} ({self.norm} norm)"),
            ("instrument", " ".join(filter(None, [self.instrument, self.detector])) or "any"),
            ("filters", ", ".join(self.filters) or "any"),
            ("units", self.units),
            (
                "input",
                f"image / {self.scale:g}"
                if self.normalisation == "scale"
                else "(image - mean) / std over the whole image",
            ),
            ("default threshold", "n/a" if self.threshold is None else f"{self.threshold:g}"),
            ("training data", self.training_data or "not recorded"),
            ("provenance", self.provenance or "not recorded"),
            ("citation", self.citation or "not recorded"),
            ("license", self.license or "not recorded"),
            ("sha256", self.sha256),
        ]
        width = max(len(key) for key, _ in rows)
        lines += [f"{key:<{width}} : {value}" for key, value in rows]
        if self.metrics:
            lines += ["", "metrics:"]
            lines += [f"  {key}: {value}" for key, value in self.metrics.items()]
        return "\n".join(lines)


_registry = {}
_lock = threading.Lock()
_builtins_loaded = False
_network_cache = {}
_registered_files = {}  # _file_key -> ModelSpec of a .safetensors path given as a model name
# one lock for loading: concurrent first uses of a model build it once
_network_lock = threading.RLock()


def _builtin_dir():
    import astro_deepcr_models

    return Path(astro_deepcr_models.__file__).parent


def _ensure_builtins():
    global _builtins_loaded
    with _lock:
        if _builtins_loaded:
            return
        _builtins_loaded = True
    before = dict(_registry)
    try:  # all or nothing: a bad conf.model_dir fails the same way on every lookup (issue #28)
        register_models_from(_builtin_dir(), overwrite=True)
        if conf.model_dir:
            register_models_from(conf.model_dir)  # never replaces a built-in model
    except Exception:
        with _lock:
            _registry.clear()
            _registry.update(before)
            _builtins_loaded = False
        raise


def register_models_from(folder, overwrite=False):
    """Register every model listed in ``folder/models.json``.

    Each entry is a `ModelSpec` dictionary whose ``file`` is relative to
    ``folder``. Returns the registered names.
    """
    folder = Path(folder)
    index = folder / "models.json"
    try:
        entries = json.loads(index.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"no models.json in {folder}") from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{index} is not valid JSON: {exc}") from None
    specs = specs_from_index(index, entries, ModelSpec, ModelFileError)  # checks every entry first
    for spec in [] if overwrite else specs:
        check_name_free(spec, _registry, f"{index}, entry {spec.name!r}", ModelFileError)
    return [register_model(spec, overwrite=overwrite).name for spec in specs]


def register_model(spec=None, *, overwrite=False, **fields):
    """Add a model to the registry.

    Parameters
    ----------
    spec : `ModelSpec`, optional
        A complete spec. Alternatively give its fields as keywords; when
        ``sha256`` is not given it is computed from ``file`` now and verified
        on every later load.
    overwrite : bool
        Replace an existing entry of the same name.

    Returns
    -------
    spec : `ModelSpec`

    Examples
    --------
    >>> from astro_deepcr import register_model
    >>> register_model(name="my-mask", kind="mask", depth=2, width=4,
    ...                file="my_mask.safetensors")  # doctest: +SKIP
    """
    _ensure_builtins()
    if spec is None:
        if not Path(fields.get("file", "")).is_file():
            raise ModelFileError(f"model {fields.get('name')!r}: weights file {fields.get('file')!r} not found")
        fields.setdefault("sha256", file_sha256(fields["file"]))
        spec = ModelSpec(**fields)
    with _lock:
        if spec.name in _registry and not overwrite:
            raise ValueError(f"a model named {spec.name!r} is already registered (use overwrite=True)")
        _registry[spec.name] = spec
    return spec


def list_models(kind=None):
    """Names of the registered models, optionally only ``"mask"`` or ``"inpaint"`` ones."""
    _ensure_builtins()
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS} or None, not {kind!r}")
    return sorted(name for name, spec in _registry.items() if kind is None or spec.kind == kind)


def get_model(name, kind=None):
    """The `ModelSpec` registered under ``name``.

    Raises
    ------
    ValueError
        Unknown name, or a model of another kind than ``kind``.
    """
    if isinstance(name, ModelSpec):
        spec = name
    else:
        _ensure_builtins()
        if not isinstance(name, (str, os.PathLike)):
            raise TypeError(f"model name must be a string, not {type(name).__name__}")
        if str(name).endswith(".safetensors"):
            return get_model(_register_file(Path(name)).name, kind)
        try:
            spec = _registry[name]
        except KeyError:
            known = ", ".join(list_models(kind))
            raise ValueError(f"unknown model {name!r}; known models: {known}") from None
    if kind is not None and spec.kind != kind:
        raise ValueError(f"model {spec.name!r} is a {spec.kind} model, not a {kind} model")
    return spec


def _file_key(path):
    """What identifies a weights file and its card on disk: path, sizes and modification times."""
    stats = [(os.fspath(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (path, path.with_suffix(".json"))
             if p.is_file()]
    return tuple(stats)


def _register_file(path):
    """Register a ``.safetensors`` file described by its sidecar card ``<stem>.json``.

    Registered once per file version: a file whose path, size and
    modification time (and its card's) are unchanged is not hashed again.
    """
    path = path.resolve()
    if not path.is_file():
        raise ModelFileError(f"weights file {path} not found")
    key = _file_key(path)
    spec = _registered_files.get(key)
    if spec is not None and _registry.get(spec.name) is spec:
        return spec
    spec = _register_new_file(path)
    _registered_files[key] = spec
    return spec


def _register_new_file(path):
    card = path.with_suffix(".json")
    try:
        fields = json.loads(card.read_text())
    except FileNotFoundError:
        raise ModelFileError(
            f"{path} has no model card {card.name} beside it; write one (the ModelSpec fields: name, kind, "
            "depth, width, ...) or use astro_deepcr.register_model"
        ) from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"model card {card} is not valid JSON: {exc}") from None
    spec = spec_from_card(card, fields, ModelSpec, ModelFileError, path, file_sha256)
    check_name_free(spec, _registry, f"model card {card}", ModelFileError, lambda other: Path(other.file) == path)
    return register_model(spec, overwrite=True)


def model_info(name, print_card=True):
    """Print (and return) the model card of ``name``."""
    card = get_model(name).card()
    if print_card:
        print(card)
    return card


def unregister_model(name):
    """Remove a model from the registry (e.g. one a test registered); returns its `ModelSpec`.

    Raises
    ------
    ValueError
        No model of that name is registered.
    """
    _ensure_builtins()
    with _lock:
        try:
            return _registry.pop(name)
        except KeyError:
            raise ValueError(f"no model named {name!r} is registered") from None


#: Mask model used for data no card matches (ground-based frames, unknown
#: instruments). Chosen by measurement on the real ground-based frames
#: (SAAO, GMOS-S, KPNO) against the model it replaced: docs/ground.rst.
GENERIC_DEFAULT_MODEL = "ground-v2"
#: Per telescope, the mask model for a camera without a card: an instrument with no card at all (WFPC2) or a
#: detector with none of an instrument that has cards (ACS/HRC). HST: ``ground``, measured better than ACS-WFC on
#: WFPC2's chips and on the ACS/HRC frame, each by a rule fixed before the measurement (docs/ground.rst,
#: "Cameras without a card"); ``ground-v2`` broke must-show lines on WFPC2 that ``ground`` meets.
UNCARDED_CAMERA_MODELS = {"HST": "ground"}


def load_network(model, kind=None, *, device=None, precision="float32", backend=None):
    """The network of ``model`` with its verified weights, from the one network cache.

    Parameters
    ----------
    model : str or `ModelSpec`
    kind : {"mask", "inpaint"}, optional
        Refuse a model of the other kind.
    device : str or `torch.device`, optional
        None: the trained network itself (eval mode, CPU; copy it to train).
        Otherwise an inference network for `astro_deepcr.engine.run_tiled`.
    precision : {"float32", "bfloat16", "float16"}
        The *resolved* precision it runs at (sensitive layers stay float32).
    backend : {"auto", "torch", "openvino"}, optional
        Default ``conf.backend``; see `astro_deepcr.engine.network_backend`.

    Returns
    -------
    net : `astro_deepcr.nets.UNet` or `astro_deepcr.openvino_backend.OpenVINONetwork`
        Shared, cached per (model, device, precision, backend; for OpenVINO
        its compiled model too): do not modify it.
    """
    spec = get_model(model, kind)
    key = (spec.name, spec.sha256, os.fspath(spec.file))
    if device is None:
        return _cached(key, lambda: _load_trained(spec))
    from . import engine, openvino_backend

    device = engine.resolve_device(device)
    if engine.network_backend(backend, device, precision) == "openvino":
        compiled_key = key + ("openvino", precision)
        return _cached(key + (str(device), precision, "openvino"), lambda: openvino_backend.network(
            load_network(spec), precision, lambda shape_key, factory: _cached(compiled_key + shape_key, factory)))
    from .nets import FLOAT32_LAYERS, inference_copy

    reduced = precision not in ("float32", None)
    return _cached(key + (str(device), "reduced" if reduced else "float32"),
                   lambda: inference_copy(load_network(spec), FLOAT32_LAYERS if reduced else ()).to(device))


def _cached(key, factory):
    with _network_lock:
        if key not in _network_cache:
            _network_cache[key] = factory()
        return _network_cache[key]


def clear_network_cache():
    """Forget every cached network (tests; freeing memory). Returns how many were cached."""
    with _network_lock:
        count = len(_network_cache)
        _network_cache.clear()
    return count


def _load_trained(spec):
    net = build_network(spec)
    state = _read_weights(spec)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelFileError(
            f"model {spec.name!r}: weights in {spec.file} do not match a {spec.kind} UNet {spec.arch} "
            f"with {spec.norm} norm ({first})"
        ) from None
    net.eval()
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net
