import pytest
import torch

from farside_gan.model import discriminator_loss, feature_matching_loss, generator_loss, lsgan_loss


def _features():
    """Two scales, one intermediate feature and one score map each (hand-checkable numbers)."""
    real = [[torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([0.5, 1.5])],
            [torch.tensor([3.0], requires_grad=True), torch.tensor([1.0])]]
    fake = [[torch.tensor([0.0, 4.0], requires_grad=True), torch.tensor([0.0, 1.0], requires_grad=True)],
            [torch.tensor([1.0], requires_grad=True), torch.tensor([-1.0], requires_grad=True)]]
    return fake, real


def test_lsgan_terms_match_hand_computed_values():
    fake, real = _features()
    # real vs 1: scale0 mean(0.25, 0.25) = 0.25, scale1 0 -> 0.25
    assert lsgan_loss(real, True).item() == pytest.approx(0.25)
    # fake vs 0: scale0 mean(0, 1) = 0.5, scale1 1 -> 1.5
    assert lsgan_loss(fake, False).item() == pytest.approx(1.5)
    assert discriminator_loss(fake, real).item() == pytest.approx(0.5 * (0.25 + 1.5))


def test_generator_loss_matches_hand_computed_value():
    fake, real = _features()
    loss = generator_loss(fake, real, lambda_fm=10.0)
    # GAN: scale0 mean((0-1)^2, (1-1)^2) = 0.5, scale1 (-1-1)^2 = 4 -> 4.5
    assert loss.gan.item() == pytest.approx(4.5)
    # FM: scale0 mean(|0-1|, |4-2|) = 1.5, scale1 |1-3| = 2, averaged over the 2 scales -> 1.75
    assert loss.feature_matching.item() == pytest.approx(1.75)
    assert loss.total.item() == pytest.approx(4.5 + 10 * 1.75)


def test_feature_matching_excludes_score_maps_and_does_not_train_the_real_branch():
    fake, real = _features()
    feature_matching_loss(fake, real).backward()
    assert real[0][0].grad is None and real[1][0].grad is None
    assert fake[0][1].grad is None  # the score map is not an intermediate feature
    # d/df mean|f - r| = sign(f - r) / n, scaled by 1 / n_D
    assert fake[0][0].grad.tolist() == pytest.approx([-0.25, 0.25])
    assert fake[1][0].grad.tolist() == pytest.approx([-0.5])


def test_feature_matching_of_identical_features_is_zero():
    fake, _ = _features()
    assert feature_matching_loss(fake, fake).item() == 0.0


def test_correlation_loss_is_zero_for_the_pattern_whatever_its_amplitude():
    from farside_gan.model.losses import correlation_loss
    torch.manual_seed(0)
    target = torch.randn(2, 1, 32, 32)
    # 1 - CC: 0 for any positive scaling and offset, 2 for the negated map, ~1 for noise
    assert correlation_loss(3.0 * target + 0.5, target).item() == pytest.approx(0.0, abs=1e-5)
    assert correlation_loss(-target, target).item() == pytest.approx(2.0, abs=1e-5)
    assert correlation_loss(torch.randn(2, 1, 32, 32), target, n_scales=1).item() == pytest.approx(1.0, abs=0.1)


def test_correlation_loss_averages_scales_and_gives_gradients():
    import torch.nn.functional as F

    from farside_gan.model.losses import correlation_loss, pearson_per_sample
    torch.manual_seed(1)
    target = torch.randn(1, 1, 16, 16)
    generated = torch.randn(1, 1, 16, 16, requires_grad=True)
    expected = 0.0
    g, t = generated.detach(), target
    for k in range(3):
        if k:
            g = F.avg_pool2d(g, 3, 2, 1, count_include_pad=False)
            t = F.avg_pool2d(t, 3, 2, 1, count_include_pad=False)
        expected += (1 - pearson_per_sample(g, t)).item() / 3
    loss = correlation_loss(generated, target, n_scales=3)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert generated.grad is not None and torch.isfinite(generated.grad).all()
    assert generated.grad.abs().sum() > 0


def test_generator_loss_adds_the_weighted_correlation_term():
    fake, real = _features()
    generated, target = torch.randn(1, 1, 8, 8), torch.randn(1, 1, 8, 8)
    plain = generator_loss(fake, real, lambda_fm=10.0)
    with_cc = generator_loss(fake, real, lambda_fm=10.0, generated=generated, target=target,
                             lambda_cc=5.0, n_cc=2)
    assert plain.correlation is None
    assert with_cc.total.item() == pytest.approx(plain.total.item() + 5.0 * with_cc.correlation.item())
    with pytest.raises(ValueError, match="lambda_cc"):
        generator_loss(fake, real, lambda_cc=1.0)
