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


# ---------------------------------------------------------------- the scale term

def _maps(seed: int = 2, n: int = 16, batch: int = 2):
    """A target with a strong bipole and weak noise, a generated map that is not its multiple,
    and a centred disk of radius 7 px."""
    g = torch.Generator().manual_seed(seed)
    rows, cols = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    centre = (n - 1) / 2
    disk = (rows - centre) ** 2 + (cols - centre) ** 2 <= 7.0 ** 2
    target = 0.02 * torch.randn(batch, 1, n, n, generator=g)
    target[:, :, 5:8, 4:7] += 0.6
    target[:, :, 5:8, 9:12] -= 0.5
    generated = 0.7 * target + 0.03 * torch.randn(batch, 1, n, n, generator=g)
    return generated, target, disk


def test_scale_loss_matches_a_hand_computed_value():
    from farside_gan.model.losses import scale_loss
    disk = torch.ones(4, 4, dtype=torch.bool)
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, :2, :2] = 1.0                      # block means |y|: [[1, 0], [0, 0]]
    generated = torch.zeros(1, 1, 4, 4)
    generated[0, 0, 0, 0] = 2.0                     # block means |G|: [[0.5, 1], [0, 0]]
    generated[0, 0, 0, 3] = -4.0
    # (|0.5 - 1| + |1 - 0|) / (1 + 0 + 0 + 0)
    assert scale_loss(generated, target, disk, 2).item() == pytest.approx(1.5, rel=1e-6)
    # the same pixels unbinned: (|2 - 1| + 3 x |0 - 1| + |4 - 0|) / 4
    assert scale_loss(generated, target, disk, 1).item() == pytest.approx(2.0, rel=1e-6)


def test_scale_loss_is_the_relative_amplitude_error_of_a_scaled_map():
    """G = c x y gives |c - 1| exactly (every block off by the same factor), whatever the
    binning; the compressed strong fields of today's model (c = 0.75) cost 0.25."""
    from farside_gan.model.losses import scale_loss
    _, target, disk = _maps()
    for c in (2.0, 0.75, 1.0, -1.0, -0.75):
        for f in (1, 2, 4):
            assert scale_loss(c * target, target, disk, f).item() == \
                pytest.approx(abs(abs(c) - 1), abs=1e-6), (c, f)


def test_scale_loss_bounds_the_unsigned_flux_error_and_sees_only_the_disk():
    from farside_gan.model.losses import scale_loss
    generated, target, disk = _maps()
    loss = scale_loss(generated[:1], target[:1], disk, 2).item()
    flux_ratio = ((generated[:1].abs() * disk).sum() / (target[:1].abs() * disk).sum()).item()
    assert loss >= abs(flux_ratio - 1) and loss > 0.2  # compressed by 0.7, plus noise
    off_disk = generated.clone()
    off_disk[:, :, ~disk] = 5.0                         # anything off the disk: no change
    assert torch.equal(scale_loss(off_disk, target, disk, 2),
                       scale_loss(generated, target, disk, 2))
    # per sample, then averaged over the batch
    per_sample = [scale_loss(generated[i:i + 1], target[i:i + 1], disk, 2) for i in range(2)]
    assert scale_loss(generated, target, disk, 2).item() == \
        pytest.approx(sum(per_sample).item() / 2, rel=1e-6)


def test_scale_loss_is_blind_to_the_sign_and_kept_by_the_north_south_flip():
    """Flipping the sign of both maps (or one) leaves it unchanged; so does the augmentation's
    north-south flip of both with the sign flipped (16 px, blocks of 2 and 4: blocks map onto
    blocks), i.e. a flipped input with a flipped sign gives the flipped output's loss."""
    from farside_gan.model.losses import scale_loss
    from farside_gan.training.data import flip_north_south
    generated, target, disk = _maps()
    for f in (1, 2, 4):
        loss = scale_loss(generated, target, disk, f)
        assert torch.equal(scale_loss(-generated, -target, disk, f), loss)
        assert torch.equal(scale_loss(generated, -target, disk, f), loss)
        flipped_generated = flip_north_south(generated, generated)[1]
        flipped_target = flip_north_south(target, target)[1]
        assert scale_loss(flipped_generated, flipped_target, disk, f).item() == \
            pytest.approx(loss.item(), rel=1e-6), f


def test_scale_loss_gives_gradients_on_the_disk_only():
    from farside_gan.model.losses import scale_loss
    generated, target, disk = _maps()
    generated.requires_grad_(True)
    scale_loss(generated, target, disk, 2).backward()
    assert torch.all(generated.grad[:, :, ~disk] == 0)
    assert torch.count_nonzero(generated.grad[:, :, disk]) > 0.9 * 2 * int(disk.sum())


def test_generator_loss_adds_the_weighted_scale_term_and_nothing_when_off():
    from farside_gan.model.losses import ScaleGeometry, scale_loss
    fake, real = _features()
    generated, target, disk = _maps()
    geometry = ScaleGeometry(disk, 2)
    plain = generator_loss(fake, real, lambda_fm=10.0, generated=generated, target=target)
    with_scale = generator_loss(fake, real, lambda_fm=10.0, generated=generated, target=target,
                                lambda_scale=3.0, scale_geometry=geometry)
    assert plain.scale is None and plain.correlation is None
    assert torch.equal(plain.total, plain.gan + 10.0 * plain.feature_matching)  # off: as before
    assert torch.equal(with_scale.scale, scale_loss(generated, target, disk, 2))
    assert with_scale.total.item() == pytest.approx(plain.total.item()
                                                    + 3.0 * with_scale.scale.item())
    with pytest.raises(ValueError, match="disk and bin factor"):
        generator_loss(fake, real, generated=generated, target=target, lambda_scale=1.0)
    with pytest.raises(ValueError, match="lambda_scale"):
        generator_loss(fake, real, lambda_scale=1.0, scale_geometry=geometry)
