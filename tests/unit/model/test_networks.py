import pytest
import torch

from farside_gan.model import (GlobalGenerator, MultiscaleDiscriminator, count_parameters,
                               init_weights)


def test_default_parameter_counts_match_the_published_architecture():
    assert count_parameters(GlobalGenerator(in_channels=3)) == 45_617_729
    assert count_parameters(MultiscaleDiscriminator(in_channels=4)) == 5_531_522


@pytest.mark.parametrize("size, n_downsample", [(32, 2), (48, 3), (64, 3), (96, 2)])
def test_generator_keeps_the_image_size(size, n_downsample):
    G = GlobalGenerator(3, 1, ngf=4, n_downsample=n_downsample, n_residual=1)
    out = G(torch.zeros(2, 3, size, size))
    assert out.shape == (2, 1, size, size)


def test_generator_rejects_sizes_not_divisible_by_the_downsampling():
    G = GlobalGenerator(3, 1, ngf=4, n_downsample=3, n_residual=1)
    with pytest.raises(ValueError, match="multiple of 8"):
        G(torch.zeros(1, 3, 36, 36))


@pytest.mark.parametrize("size", [64, 128])
def test_discriminator_returns_block_features_per_scale(size):
    D = MultiscaleDiscriminator(in_channels=4, ndf=4, n_D=2)
    out = D(torch.zeros(1, 4, size, size))
    assert len(out) == 2 and all(len(scale) == 5 for scale in out)
    # 70x70 PatchGAN: three stride-2 convs, then two stride-1 4x4 convs (each -1 pixel).
    for k, scale in enumerate(out):
        s = size // 2 ** k
        expected = [s // 2, s // 4, s // 8, s // 8 - 1, s // 8 - 2]
        assert [f.shape[-1] for f in scale] == expected
        assert [f.shape[1] for f in scale] == [4, 8, 16, 32, 1]


def test_generator_options_change_the_network():
    assert count_parameters(GlobalGenerator(1, 1, ngf=8, n_downsample=2, n_residual=1)) < \
        count_parameters(GlobalGenerator(3, 1, ngf=8, n_downsample=2, n_residual=1))
    zero_pad = GlobalGenerator(3, 1, ngf=4, n_downsample=2, n_residual=1, padding="zero")
    assert not any(isinstance(m, torch.nn.ReflectionPad2d) for m in zero_pad.modules())
    assert zero_pad(torch.zeros(1, 3, 32, 32)).shape == (1, 1, 32, 32)
    batch = GlobalGenerator(3, 1, ngf=4, n_downsample=2, n_residual=1, norm="batch")
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in batch.modules())
    with pytest.raises(ValueError, match="norm"):
        GlobalGenerator(norm="group")


def test_init_weights_draws_conv_weights_from_n_0_002():
    torch.manual_seed(0)
    D = MultiscaleDiscriminator(in_channels=4, ndf=64, n_D=1)
    init_weights(D, 0.02)
    w = torch.cat([m.weight.flatten() for m in D.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.mean().item()) < 1e-3
    assert w.std().item() == pytest.approx(0.02, rel=0.02)
    assert all(torch.all(m.bias == 0) for m in D.modules() if isinstance(m, torch.nn.Conv2d))
