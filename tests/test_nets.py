# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest
import torch

from astro_deepcr.nets import BN_MOMENTUM, UNet, deepen, fold_batchnorm, inpaint_net, mask_net, receptive_radius


@pytest.mark.parametrize("depth, width", [(1, 4), (2, 4), (2, 32), (3, 32), (4, 8)])
def test_unet_shapes_and_range(depth, width):
    net = mask_net(depth, width).eval()
    x = torch.randn(2, 1, 8 * 2**depth, 4 * 2**depth)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 1, *x.shape[2:])
    assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_inpaint_net_takes_two_channels_and_is_linear_output():
    net = inpaint_net(3, 8).eval()
    assert net.inc[0].in_channels == 2
    assert not net.sigmoid
    with torch.no_grad():
        net.head.bias.fill_(5.0)
        y = net(torch.randn(1, 2, 32, 32))
    assert y.max() > 1  # no sigmoid squashing


def test_batchnorm_momentum_is_the_papers():
    net = mask_net(2, 4)
    momenta = {m.momentum for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert momenta == {BN_MOMENTUM} == {0.005}


def test_weight_norm_variant_has_no_batchnorm():
    net = mask_net(2, 8, norm="weight")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    keys = set(net.state_dict())
    assert "inc.0.parametrizations.weight.original0" in keys


def test_bad_configuration():
    with pytest.raises(ValueError, match="norm must be"):
        UNet(norm="group")
    with pytest.raises(ValueError, match="positive"):
        UNet(depth=0)


@pytest.mark.parametrize("norm", ["batch", "weight"])
@pytest.mark.parametrize("depth", [2, 3])
def test_fold_batchnorm_matches_eval_network(norm, depth):
    torch.manual_seed(0)
    net = UNet(in_channels=2, depth=depth, width=8, norm=norm, sigmoid=False)
    # give BatchNorm non-trivial statistics and affine parameters
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    net.eval()
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(1, 2, 32, 48)
    with torch.no_grad():
        np.testing.assert_allclose(folded(x).numpy(), net(x).numpy(), atol=1e-4, rtol=1e-4)
    # the original is untouched
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == (norm == "batch")


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_receptive_radius_bounds_the_measured_influence(depth):
    """Perturb one pixel and find how far the output changes: never beyond the radius,
    and the radius is not a gross overestimate."""
    torch.manual_seed(1)
    net = mask_net(depth, 4).eval()
    size = 128
    x = torch.randn(1, 1, size, size)
    y = x.clone()
    y[0, 0, 64, 64] += 50.0
    with torch.no_grad():
        changed = (net(x) - net(y)).abs()[0, 0] > 0
    rows, cols = np.nonzero(changed.numpy())
    reach = max(np.abs(rows - 64).max(), np.abs(cols - 64).max())
    assert reach <= receptive_radius(depth)
    assert reach >= receptive_radius(depth) - 2**depth


def _with_batchnorm_statistics(net, seed=0):
    generator = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
            module.running_var.copy_(0.5 + 1.5 * torch.rand(module.num_features, generator=generator))
            module.weight.data.copy_(0.5 + torch.rand(module.num_features, generator=generator))
            module.bias.data.copy_(0.4 * torch.rand(module.num_features, generator=generator) - 0.2)
    return net.eval()


@pytest.mark.parametrize("in_channels, sigmoid", [(1, True), (2, False)])
@pytest.mark.parametrize("depth, deeper", [(1, 2), (2, 3), (2, 4)])
def test_deepen_starts_as_the_same_function_and_can_learn(in_channels, sigmoid, depth, deeper):
    torch.manual_seed(3)
    net = _with_batchnorm_statistics(UNet(in_channels, depth=depth, width=8, sigmoid=sigmoid))
    before = {key: value.clone() for key, value in net.state_dict().items()}
    grown = deepen(net, deeper).eval()
    assert (grown.depth, grown.width, grown.sigmoid) == (deeper, 8, sigmoid)
    assert receptive_radius(deeper) > receptive_radius(depth)
    x = 5 * torch.randn(2, in_channels, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(grown(x), net(x), rtol=1e-5, atol=1e-5)
    for key, value in net.state_dict().items():  # the network it grew from is untouched
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    # the new levels are not dead: one gradient step changes the output
    grown.train()
    loss = grown(x).square().mean()
    loss.backward()
    joining = grown.up[deeper - 2 - (depth - 1)].conv[0].weight
    assert joining.grad[:, joining.shape[1] // 2:].abs().max() > 0
    # the new coarse levels get no gradient until the joining weights move off zero
    assert grown.down[-1][1][0].weight.grad.abs().max() == 0
    with torch.no_grad():
        joining -= 0.1 * joining.grad.sign()
    grown.eval()
    with torch.no_grad():
        assert (grown(x) - net(x)).abs().max() > 1e-3


def test_deepen_rejects_what_it_cannot_grow():
    with pytest.raises(ValueError, match="depth must exceed"):
        deepen(mask_net(2, 4), 2)
    with pytest.raises(ValueError, match="norm='batch'"):
        deepen(mask_net(2, 4, norm="weight"), 3)
