# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The deepCR UNet family (Zhang & Bloom 2020, ApJ 889, 24).

Plain `torch.nn.Module` classes configured by a few integers. Nothing here
knows about files, devices or images larger than a tensor: that is the job of
`astro_deepcr.zoo` and `astro_deepcr.engine`.

A network of depth ``D`` and width ``C`` has ``D`` resolution levels with
``C, 2C, ..., 2**(D-1) C`` channels, ``D - 1`` 2x2 max-pool steps down and
``D - 1`` 2x2 transposed convolutions up with skip concatenation.
"""

import copy

import torch
from torch import nn
from torch.nn.utils import parametrizations

__all__ = [
    "UNet",
    "DoubleConv",
    "KeepFloat32",
    "mask_net",
    "inpaint_net",
    "fold_batchnorm",
    "keep_float32",
    "inference_copy",
    "FLOAT32_LAYERS",
    "receptive_radius",
    "deepen",
]

#: BatchNorm momentum used by deepCR for training (the paper's recipe).
BN_MOMENTUM = 0.005
#: Layers kept in float32 under a bfloat16/float16 autocast, chosen by measurement
#: (``benchmarks/validate_precision.py --layers``; see docs/performance.rst).
FLOAT32_LAYERS = ("inc.0", "head")


class DoubleConv(nn.Sequential):
    """(3x3 conv, normalisation, ReLU) x 2.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    norm : {"batch", "weight"}
        ``"batch"``: conv followed by `~torch.nn.BatchNorm2d` (momentum 0.005),
        as in the ACS/WFC and DECam models. ``"weight"``: weight-normalised
        convolutions and no BatchNorm, as in the published WFC3/UVIS model.
    """

    def __init__(self, in_channels, out_channels, norm="batch"):
        if norm == "batch":
            layers = [
                nn.Conv2d(in_channels, out_channels, 3, padding=1),
                nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True),
                nn.Conv2d(out_channels, out_channels, 3, padding=1),
                nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True),
            ]
        elif norm == "weight":
            layers = [
                parametrizations.weight_norm(nn.Conv2d(in_channels, out_channels, 3, padding=1)),
                nn.ReLU(inplace=True),
                parametrizations.weight_norm(nn.Conv2d(out_channels, out_channels, 3, padding=1)),
                nn.ReLU(inplace=True),
            ]
        else:
            raise ValueError(f"norm must be 'batch' or 'weight', not {norm!r}")
        super().__init__(*layers)


class KeepFloat32(nn.Module):
    """Run ``module`` in float32 even inside a lower-precision autocast region.

    The input is cast to float32 and autocast is switched off for the
    wrapped module only; outside autocast the wrapper changes nothing.
    """

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x, *args):
        with torch.autocast(x.device.type, enabled=False):
            return self.module(x.float(), *(a.float() for a in args))


class Up(nn.Module):
    """2x2 transposed-conv upsampling, skip concatenation, `DoubleConv`."""

    def __init__(self, in_channels, out_channels, norm="batch"):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels, norm)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    """A deepCR UNet.

    Parameters
    ----------
    in_channels : int
        1 for a mask network (the image), 2 for an inpainting network
        (image with masked pixels zeroed, and the mask).
    depth : int
        Number of resolution levels (2 or 3 in the published models; any
        value >= 1 works).
    width : int
        Channels at the first level; doubled at every level down.
    norm : {"batch", "weight"}
        Normalisation of the convolution blocks, see `DoubleConv`.
    sigmoid : bool
        Apply a sigmoid to the 1x1 output convolution (mask networks).

    Notes
    -----
    Input height and width must be multiples of ``2 ** (depth - 1)``; the
    inference engine pads to that.
    """

    def __init__(self, in_channels=1, depth=2, width=32, norm="batch", sigmoid=True):
        super().__init__()
        if depth < 1 or width < 1 or in_channels < 1:
            raise ValueError("in_channels, depth and width must be positive integers")
        self.depth, self.width, self.norm, self.sigmoid = int(depth), int(width), norm, bool(sigmoid)
        channels = [width * 2**level for level in range(depth)]
        self.inc = DoubleConv(in_channels, channels[0], norm)
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), DoubleConv(channels[i], channels[i + 1], norm))
            for i in range(depth - 1)
        )
        self.up = nn.ModuleList(Up(channels[i + 1], channels[i], norm) for i in reversed(range(depth - 1)))
        self.head = nn.Conv2d(channels[0], 1, 1)

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        x = self.head(x)
        return torch.sigmoid(x) if self.sigmoid else x


def mask_net(depth=2, width=32, norm="batch"):
    """The deepCR-mask network: 1 input channel, sigmoid probability output."""
    return UNet(in_channels=1, depth=depth, width=width, norm=norm, sigmoid=True)


def inpaint_net(depth=2, width=32, norm="batch"):
    """The deepCR-inpaint network: (masked image, mask) in, image out."""
    return UNet(in_channels=2, depth=depth, width=width, norm=norm, sigmoid=False)


@torch.no_grad()
def deepen(net, depth):
    """A deeper copy of a BatchNorm `UNet` that computes the same function.

    The levels of ``net`` are copied; the new coarser levels start from
    PyTorch's default initialisation, and the new upsampling block that joins
    them to the old bottom level starts as the identity on its skip input (its
    weights on the upsampled channels are zero), so the copy's output, in eval
    mode, equals ``net``'s until training changes the new weights (function-
    preserving growth as in Net2Net, Chen, Goodfellow & Shlens 2016). Used to
    fine-tune a shipped 2-level model as a 3-level one, whose receptive field
    is wider (`receptive_radius`). ``net`` is not modified.

    Raises
    ------
    ValueError
        ``depth`` not larger than ``net.depth``, or a weight-normalised network
        (it has no BatchNorm to make the joining block an identity with).
    """
    if not isinstance(net, UNet) or net.norm != "batch":
        raise ValueError("deepen needs a UNet with BatchNorm blocks (norm='batch')")
    if int(depth) <= net.depth:
        raise ValueError(f"depth must exceed the network's depth {net.depth}, not {depth!r}")
    in_channels = net.inc[0].in_channels
    deeper = UNet(in_channels=in_channels, depth=depth, width=net.width, norm="batch", sigmoid=net.sigmoid)
    deeper.inc.load_state_dict(net.inc.state_dict())
    deeper.head.load_state_dict(net.head.state_dict())
    for level, block in enumerate(net.down):
        deeper.down[level].load_state_dict(block.state_dict())
    # up[k] works at level depth - 2 - k in both networks
    for k, block in enumerate(net.up):
        level = net.depth - 2 - k
        deeper.up[deeper.depth - 2 - level].load_state_dict(block.state_dict())
    _make_identity(deeper.up[deeper.depth - 2 - (net.depth - 1)].conv)
    return deeper


def _make_identity(block):
    """Set a BatchNorm `DoubleConv` of ``2C -> C`` channels to pass its first ``C`` input channels through
    unchanged (they are a skip input, non-negative after its ReLU) and ignore the rest."""
    for layer in block:
        if isinstance(layer, nn.Conv2d):
            layer.weight.zero_()
            layer.bias.zero_()
            for channel in range(layer.out_channels):
                layer.weight[channel, channel, 1, 1] = 1.0
        elif isinstance(layer, nn.BatchNorm2d):
            layer.weight.fill_(1.0)
            layer.bias.zero_()
            layer.running_mean.zero_()
            layer.running_var.fill_(1.0 - layer.eps)


def receptive_radius(depth):
    """Half-width in pixels of the region that influences one output pixel.

    Each 3x3 conv at level ``l`` adds ``2**l`` pixels, each pool or
    transposed conv between levels ``l`` and ``l + 1`` adds ``2**l``.
    """
    radius = 2  # two convs at level 0 on the way down
    for level in range(1, depth):
        radius += 2 ** (level - 1) + 2 * 2**level  # pool, then two convs
    for level in reversed(range(depth - 1)):
        radius += 2**level + 2 * 2**level  # transposed conv, then two convs
    return radius


def keep_float32(net, names):
    """Wrap the submodules of ``net`` named in ``names`` (dotted paths such as
    ``"inc.0"`` or ``"head"``) in `KeepFloat32`, in place; return ``net``.

    Raises
    ------
    ValueError
        A name that is not a submodule of ``net``.
    """
    for name in names:
        parent_name, _, child = name.rpartition(".")
        try:
            parent = net.get_submodule(parent_name) if parent_name else net
            module = parent.get_submodule(child)
        except AttributeError:
            raise ValueError(f"network has no submodule {name!r}") from None
        if not isinstance(module, KeepFloat32):
            setattr(parent, child, KeepFloat32(module))  # also right for nn.Sequential's "0", "1"...
    return net


def inference_copy(net, float32_layers=()):
    """A frozen inference copy of ``net``: BatchNorm folded (`fold_batchnorm`),
    ``float32_layers`` wrapped by `keep_float32`, channels-last memory format.
    ``net`` is not modified."""
    fast = keep_float32(fold_batchnorm(net), float32_layers)
    fast = fast.to(memory_format=torch.channels_last)
    for parameter in fast.parameters():
        parameter.requires_grad_(False)
    return fast


@torch.no_grad()
def fold_batchnorm(net):
    """Return an inference copy of ``net`` with every BatchNorm folded into
    the preceding convolution and weight normalisation removed.

    The result computes the same function as ``net.eval()`` (to float
    rounding) with fewer passes over memory. ``net`` is not modified.
    """
    folded = copy.deepcopy(net).eval()
    for module in folded.modules():
        if not isinstance(module, DoubleConv):
            continue
        for index, layer in enumerate(module):
            if isinstance(layer, nn.Conv2d) and torch.nn.utils.parametrize.is_parametrized(layer):
                plain = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, padding=layer.padding)
                plain.weight.copy_(layer.weight)
                plain.bias.copy_(layer.bias)
                module[index] = plain
            if isinstance(layer, nn.BatchNorm2d):
                conv = module[index - 1]
                scale = layer.weight / torch.sqrt(layer.running_var + layer.eps)
                conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
                conv.bias.copy_((conv.bias - layer.running_mean) * scale + layer.bias)
                module[index] = nn.Identity()
    return folded
