# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The OpenVINO runtime for the deepCR UNets on CPU (optional: ``pip install astro_deepcr[openvino]``).

The tiling stays `astro_deepcr.engine`'s; OpenVINO only runs the network on
each batch of tiles. The torch inference copy (BatchNorm folded) is converted
in memory by OpenVINO's PyTorch front end, the converter behind
``openvino.convert_model``, called directly because ``convert_model`` also
starts OpenVINO's usage telemetry, and nothing here may reach for the
network. No model cache directory is set.

Precision is always set explicitly (``INFERENCE_PRECISION_HINT``):
OpenVINO's own default on a CPU with native bfloat16 is bfloat16 in every
layer, which flips about twice as many real cosmic-ray pixels as keeping the
`~astro_deepcr.nets.FLOAT32_LAYERS` (first convolution and 1x1 head) in
float32, as this module does. How: the CPU plugin keeps a node in float32
under a bfloat16 hint only when it carries OpenVINO's
``DisablePrecisionConversion`` runtime attribute, which the Python API cannot
create; a plain string entry in the node's runtime info is ignored (measured
with OpenVINO 2026.4: the first convolution ran bfloat16 and flipped 90 of
3828 HRC CR pixels). OpenVINO's IR reader does create it from the legacy
attribute ``precise`` (``ConvertLegacyPrecisionAttribute``), so `convert`
marks the operations with ``precise_0`` and passes the model once through
the IR format: written to a temporary folder, read back into memory, the
folder removed at once. The runtime precisions are checked by
``tests/test_backends.py::test_runtime_precision_of_the_first_convolution``
on every CPU with native bfloat16 (`OpenVINONetwork.runtime_precisions`). One compiled model with dynamic height and
width serves every tile shape (one per thread count), held in the one network
cache (`astro_deepcr.zoo.load_network`). Measured against one compiled model
per tile shape on 2 AVX2 cores: identical probabilities (difference 0.0),
2048 x 2048 in 2.94 s instead of 3.30 s warm and 3.41 s instead of 4.53 s
cold, five small odd shapes in 0.03 s instead of 0.22 s.
"""

import os
import tempfile
import threading
import warnings

import numpy as np

__all__ = ["available", "version", "convert", "network", "OpenVINONetwork", "HINTS", "KEEP_FLOAT32",
           "keeps_float32"]

#: Precisions OpenVINO runs here, and the hint each sets.
HINTS = {"float32": "f32", "bfloat16": "bf16"}
#: The legacy runtime attribute (``precise``, version 0) that OpenVINO's IR reader turns into
#: ``DisablePrecisionConversion``, the attribute the CPU plugin honours: the node keeps float32
#: under a bfloat16 inference precision.
KEEP_FLOAT32 = "precise_0"
#: The runtime-info key of that attribute once the model has been read back (`convert`).
KEPT_FLOAT32 = "DisablePrecisionConversion_0"

_core = None
_core_lock = threading.Lock()


def available():
    """Whether the ``openvino`` package can be imported."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def version():
    """OpenVINO's version string (e.g. ``"2026.4.1"``), for logs and headers."""
    import openvino

    return openvino.__version__.split("-")[0]


def _get_core():
    global _core
    with _core_lock:
        if _core is None:
            import openvino

            _core = openvino.Core()
        return _core


def _type(precision):
    import openvino

    return {"float32": openvino.Type.f32, "bfloat16": openvino.Type.bf16}[precision]


def native_precisions():
    """The precisions the CPU plugin computes natively on this machine (``"bfloat16"`` only
    on CPUs with AVX512-BF16 or AMX; OpenVINO silently computes float32 elsewhere)."""
    capabilities = _get_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return {"float32", *(["bfloat16"] if "BF16" in capabilities else [])}


def convert(net, float32_layers=()):
    """An ``openvino.Model`` of the torch network ``net`` (float32, eval mode, any input size).

    ``float32_layers`` are names of ``net``'s submodules (e.g. ``"inc.0"``)
    whose operations keep float32 under a reduced inference precision.
    """
    import torch
    from openvino.frontend import FrontEndManager
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

    in_channels = _in_channels(net)
    side = 4 * 2**net.depth
    example = torch.zeros(1, in_channels, side, side)
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # the front end traces the module (what openvino.convert_model does by default); torch 2.13 deprecates
        # jit.trace in favour of torch.export, whose operation names would not name the torch layers
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace.* is deprecated", category=DeprecationWarning)
        decoder = TorchScriptPythonDecoder(net, example_input=(example,))
    frontend = FrontEndManager().load_by_framework("pytorch")
    model = frontend.convert(frontend.load(decoder))
    marked = mark_float32(model, float32_layers)
    missing = set(float32_layers) - marked
    if missing:
        raise ValueError(f"no OpenVINO operation of layer(s) {sorted(missing)} found to keep in float32")
    return _through_ir(model) if marked else model


def _through_ir(model):
    """``model`` written as IR and read back into memory: the reader makes the CPU plugin's
    ``DisablePrecisionConversion`` of the ``precise_0`` marks (see the module's notes)."""
    import openvino

    with tempfile.TemporaryDirectory(prefix="astro_deepcr_ov_") as folder:
        xml = os.path.join(folder, "model.xml")
        openvino.save_model(model, xml, compress_to_fp16=False)
        with open(xml, "rb") as stream:
            text = stream.read()
        with open(os.path.join(folder, "model.bin"), "rb") as stream:
            weights = np.frombuffer(stream.read(), np.uint8).copy()
    return _get_core().read_model(text, openvino.Tensor(weights))


def keeps_float32(op):
    """Whether the operation ``op`` of a model from `convert` is marked to keep float32."""
    info = op.get_rt_info()
    return KEPT_FLOAT32 in info or KEEP_FLOAT32 in info


def network(trained, precision, cache):
    """An `OpenVINONetwork` of the trained torch UNet ``trained`` (BatchNorm folded here) at ``precision``,
    the `~astro_deepcr.nets.FLOAT32_LAYERS` kept float32 under bfloat16; ``cache`` as in `OpenVINONetwork`."""
    from .nets import FLOAT32_LAYERS, fold_batchnorm

    model = convert(fold_batchnorm(trained), FLOAT32_LAYERS if precision != "float32" else ())
    return OpenVINONetwork(model, trained.depth, precision, cache)


def _in_channels(net):
    first = next(module for module in net.modules() if isinstance(module, __import__("torch").nn.Conv2d))
    return first.in_channels


def layer_of(friendly_name):
    """The torch submodule name an operation of the converted model came from
    (``"__module.inc.0/aten::_convolution/Convolution"`` -> ``"inc.0"``), or ``""``."""
    head = friendly_name.split("/", 1)[0]
    return head[len("__module."):] if head.startswith("__module.") else ""


def mark_float32(model, layers):
    """Keep the convolutions of ``layers`` in float32; returns the layers found."""
    found = set()
    for op in model.get_ordered_ops():
        layer = layer_of(op.get_friendly_name())
        if layer in layers and op.get_type_name() in ("Convolution", "Add"):
            op.get_rt_info()[KEEP_FLOAT32] = ""
            found.add(layer)
    return found


class OpenVINONetwork:
    """A deepCR network run by OpenVINO on the CPU at one precision.

    Called on a float32 array ``(N, C, H, W)``, it returns ``(N, 1, H, W)``
    float32. One compiled model (dynamic height and width: every tile shape)
    is made on first use of each thread count and kept by
    ``cache(key, factory)`` (the one network cache).

    Parameters
    ----------
    model : openvino.Model
        From `convert`.
    depth : int
        The UNet depth (the engine's tile grid is ``2**depth``).
    precision : {"float32", "bfloat16"}
    cache : callable
        ``cache(key, factory)`` returns the cached value for ``key``, calling
        ``factory()`` once.
    """

    backend = "openvino"

    def __init__(self, model, depth, precision, cache):
        if precision not in HINTS:
            raise ValueError(f"OpenVINO runs precision {list(HINTS)}, not {precision!r}")
        self.model = model
        self.depth = int(depth)
        self.precision = precision
        self._cache = cache

    def __repr__(self):
        return f"OpenVINONetwork(depth={self.depth}, precision={self.precision!r})"

    def compiled(self, shape, threads):
        """The compiled model that runs inputs of ``shape`` (any tile shape) on ``threads`` CPU threads."""
        if len(shape) != 4:
            raise ValueError(f"inputs must be (batch, channels, height, width), not of shape {tuple(shape)}")
        return self._cache(("compiled", int(threads)), lambda: self._compile(int(threads)))

    def _compile(self, threads):
        model = self.model.clone()  # its height and width stay dynamic: one compilation for every tile shape
        config = {"INFERENCE_PRECISION_HINT": HINTS[self.precision], "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1}
        compiled = _get_core().compile_model(model, "CPU", config)
        applied = compiled.get_property("INFERENCE_PRECISION_HINT")
        if applied != _type(self.precision):
            raise RuntimeError(f"OpenVINO applied inference precision {applied} instead of {self.precision}: this "
                               "CPU does not compute it natively; use backend='torch'")
        return compiled

    def __call__(self, batch, threads):
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        request = self.compiled(batch.shape, threads).create_infer_request()
        request.infer({0: batch}, share_inputs=True)
        return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)

    def runtime_precisions(self, shape, threads=1):
        """``{layer: runtime precision}`` of the convolutions of the compiled model for ``shape``
        (e.g. ``{"inc.0": "f32", "inc.3": "bf16", ...}``): what the CPU plugin really runs."""
        precisions = {}
        for op in self.compiled(shape, threads).get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            if str(info["layerType"].astype(str)) not in ("Convolution", "Deconvolution"):
                continue
            for name in str(info["originalLayersNames"].astype(str)).split(","):
                layer = layer_of(name)
                if layer:
                    precisions[layer] = str(info["runtimePrecision"].astype(str))
        return precisions
