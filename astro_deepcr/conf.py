# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Run-time configuration, read from ``~/.astropy/config/astro_deepcr.cfg``.

Example::

    >>> from astro_deepcr import conf
    >>> with conf.set_temp("tile_size", 512):
    ...     pass
"""

from astropy import config as _config

__all__ = ["Conf", "conf"]


class Conf(_config.ConfigNamespace):
    """Configuration parameters for `astro_deepcr`."""

    device = _config.ConfigItem(
        "auto",
        "Torch device for inference: 'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'.",
    )
    threads = _config.ConfigItem(
        0, "Torch intra-op CPU threads during inference; 0 leaves torch's own setting.", cfgtype="integer"
    )
    tile_size = _config.ConfigItem(
        0,
        "Side of the square tile (without halo) the engine feeds to the network; bounds peak memory. "
        "0 picks per runtime: 1024 for OpenVINO, 512 for torch (astro_deepcr.engine.DEFAULT_TILE_SIZE).",
        cfgtype="integer",
    )
    precision = _config.ConfigItem(
        ["auto", "float32", "bfloat16", "float16"],
        "Network precision: 'auto' (bfloat16 where the device computes it natively and the model passed its "
        "bfloat16 validation on this machine, measured on first use and cached, else float32), or 'float32' for "
        "bit-reproducible runs, 'bfloat16', 'float16'.",
    )
    backend = _config.ConfigItem(
        ["auto", "torch", "openvino"],
        "Inference runtime: 'auto' (OpenVINO on the CPU where the optional openvino package is installed, "
        "torch otherwise and on CUDA), 'torch' or 'openvino'.",
    )
    batch_size = _config.ConfigItem(
        0, "Tiles per network call; 0 picks 1 on CPU and 8 on GPU.", cfgtype="integer"
    )
    model_dir = _config.ConfigItem(
        "",
        "Optional folder holding a models.json and *.safetensors files of your own, registered at import.",
    )


conf = Conf()
