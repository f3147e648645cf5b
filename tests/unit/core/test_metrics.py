import math

import numpy as np
import pytest
from astropy.io import fits

from farside_gan.core import metrics
from farside_gan.core.geometry import disk_mask


def test_pearson_cc_matches_hand_computed_value():
    # means 2 and 13/3; sum(da*db) = 5, sum(da^2) = 2, sum(db^2) = 38/3
    assert metrics.pearson_cc([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / math.sqrt(2 * 38 / 3))
    assert metrics.pearson_cc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_pearson_cc_uses_only_masked_pixels_and_is_nan_when_undefined():
    a = np.array([[1.0, 2.0], [3.0, 100.0]])
    b = np.array([[2.0, 4.0], [6.0, -100.0]])
    mask = np.array([[True, True], [True, False]])
    assert metrics.pearson_cc(a, b, mask) == pytest.approx(1.0)
    assert math.isnan(metrics.pearson_cc([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(metrics.pearson_cc([1.0], [2.0]))


def test_bin_image_takes_block_means_and_drops_partial_blocks():
    image = np.arange(16.0).reshape(4, 4)
    assert metrics.bin_image(image, 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    assert metrics.bin_image(np.arange(25.0).reshape(5, 5), 2).shape == (2, 2)
    mask = np.ones((4, 4), bool)
    mask[0, 3] = False
    assert metrics.bin_mask(mask, 2).tolist() == [[True, False], [True, True]]


def test_rmse_and_fluxes_match_hand_computed_values():
    assert metrics.rmse([0.0, 0.0], [3.0, 4.0]) == pytest.approx(math.sqrt(12.5))
    field = np.array([[100.0, -50.0], [0.0, 20.0]])
    mask = np.array([[True, True], [True, False]])
    assert metrics.unsigned_flux(field, mask, pixel_area=2.0) == pytest.approx(300.0)
    assert metrics.net_flux(field, mask, pixel_area=2.0) == pytest.approx(100.0)


def test_pixel_area_from_header():
    h = fits.Header({"DSUN_OBS": 1.5e11, "CDELT1": 1.0, "CDELT2": 2.0})
    side = math.pi / 180 / 3600 * 1.5e13  # 1 arcsec at 1.5e11 m, in cm
    assert metrics.pixel_area_cm2(h) == pytest.approx(side * 2 * side)
    assert metrics.pixel_area_cm2(fits.Header()) is None


def test_compare_splits_active_region_and_quiet_sun():
    # 4x4 blocks of 4x4 pixels with constant values, so binning returns these numbers exactly.
    blocks = np.array([[500.0, -400.0, 10.0, 5.0],
                       [20.0, -30.0, 200.0, 0.0],
                       [-8.0, 15.0, -250.0, 40.0],
                       [1.0, 2.0, 3.0, 4.0]])
    real = np.kron(blocks, np.ones((4, 4)))
    ar = np.abs(real) >= 100
    generated = np.where(ar, 2 * real, -real)  # AR: perfectly correlated; QS: anti-correlated
    disk = np.ones((16, 16), bool)
    disk[:, 12:] = False  # the last block column is off the disk
    m = metrics.compare(generated, real, disk, bin_factor=4, ar_threshold=100.0,
                        min_region_pixels=4)
    assert (m["n_binned"], m["n_ar"], m["n_qs"]) == (12, 4, 8)
    assert m["cc_ar"] == pytest.approx(1.0)
    assert m["cc_qs"] == pytest.approx(-1.0)
    on = blocks[:, :3]
    gen_on = np.where(np.abs(on) >= 100, 2 * on, -on)
    assert m["cc_binned"] == pytest.approx(np.corrcoef(on.ravel(), gen_on.ravel())[0, 1])
    assert m["unsigned_flux_real"] == pytest.approx(16 * np.abs(on).sum())
    assert m["unsigned_flux_generated"] == pytest.approx(16 * np.abs(gen_on).sum())
    assert m["net_flux_real"] == pytest.approx(16 * on.sum())
    assert m["rmse_binned"] == pytest.approx(np.sqrt(np.mean((gen_on - on) ** 2)))
    assert m["rmse"] == pytest.approx(m["rmse_binned"])  # constant blocks


def test_region_cc_over_too_few_pixels_is_nan_not_plus_or_minus_one():
    """Two or three binned pixels correlate perfectly by construction (a demo model whose
    full-disk CC was 0.02 scored cc_ar 0.999 that way): below the minimum it is NaN."""
    rng = np.random.default_rng(0)
    real = rng.normal(0, 20, (16, 16))
    real[0, :3] = [500.0, -400.0, 300.0]          # three strong pixels: the "active region"
    generated = rng.normal(0, 20, (16, 16))
    generated[0, :3] = [10.0, -5.0, 8.0]          # ordered like the real ones, but tiny
    disk = np.ones((16, 16), bool)
    m = metrics.compare(generated, real, disk, bin_factor=1, ar_threshold=100.0)
    assert m["n_ar"] == 3
    assert math.isnan(m["cc_ar"])
    assert metrics.pearson_cc(generated[0, :3], real[0, :3]) > 0.99   # what it used to report
    assert np.isfinite(m["cc_qs"]) and m["n_qs"] >= metrics.MIN_REGION_PIXELS


def test_bin_factor_covers_the_published_solar_area():
    assert metrics.bin_factor_for(450.0) == 8       # 1024 px
    assert metrics.bin_factor_for(225.0) == 4       # 512 px
    assert metrics.bin_factor_for(112.5) == 2       # 256 px
    assert metrics.bin_factor_for(56.25) == 1       # 128 px: no binning


def test_flux_ratio_and_net_flux_error():
    """Net flux as |net generated - net true| / unsigned true: a fraction of the flux, bounded
    by 2 (the old generated/true net ratio ran from -3935 to 110 where the net flux is near 0)."""
    real = np.array([[100.0, -50.0]])
    m = metrics.compare(2 * real, real, np.ones_like(real, bool), bin_factor=1)
    assert m["unsigned_flux_ratio"] == pytest.approx(2.0)
    assert m["unsigned_flux_within_10pct"] == 0.0
    # net 50 true, 100 generated, 150 unsigned true
    assert m["net_flux_error"] == pytest.approx(50 / 150)
    balanced = np.array([[100.0, -100.0]])  # net 0: the old ratio divided by it
    m = metrics.compare(np.array([[100.0, -95.0]]), balanced, np.ones((1, 2), bool), 1)
    assert m["net_flux_error"] == pytest.approx(5 / 200)
    assert m["unsigned_flux_within_10pct"] == 1.0  # 195 / 200
    flipped = metrics.compare(-real, real, np.ones_like(real, bool), 1)
    assert flipped["net_flux_error"] == pytest.approx(100 / 150)
    nothing = metrics.compare(real, 0 * real, np.ones_like(real, bool), 1)
    assert math.isnan(nothing["net_flux_error"])


def test_active_regions_are_the_union_of_true_and_generated_strong_field():
    """A region the model invents where the Sun is quiet counts against it: its pixels are
    active-region pixels (and not quiet Sun), and they pull the active-region CC down."""
    rng = np.random.default_rng(1)
    real = rng.normal(0.0, 10.0, (32, 32))
    real[4:10, 4:10] = np.linspace(300.0, 900.0, 36).reshape(6, 6)   # a true region
    generated = real.copy()
    invented = np.zeros_like(real, bool)
    invented[20:26, 20:26] = True
    generated[invented] = np.linspace(900.0, 300.0, 36)   # where the Sun is quiet
    disk = np.ones_like(real, bool)
    honest = metrics.compare(real, real, disk, bin_factor=1)
    m = metrics.compare(generated, real, disk, bin_factor=1)
    assert honest["n_ar"] == 36 and m["n_ar"] == 72
    assert m["n_qs"] == 32 * 32 - 72
    assert honest["cc_ar"] == pytest.approx(1.0)
    assert m["cc_ar"] < 0.5                        # 0.27: 300-900 G generated where the truth is ~0
    assert m["cc_qs"] == pytest.approx(1.0)        # the quiet Sun left is untouched


def test_mu_bands_partition_the_disk():
    """mu = sqrt(1 - (r/R)^2) from the disk's centre and radius; the bands (mu >= 0.8,
    0.5-0.8, < 0.5) hold every binned disk pixel once, each where its mu says."""
    size, rsun = 128, 56.0
    mu = metrics.mu_map(size, rsun)
    assert mu[63, 63] == pytest.approx(np.sqrt(1 - (0.5 ** 2 * 2) / rsun ** 2))
    assert mu[0, 0] == 0.0
    disk = disk_mask(size, rsun, 0.98)
    rng = np.random.default_rng(0)
    real = rng.normal(0, 100, (size, size))
    m = metrics.compare(real + rng.normal(0, 30, real.shape), real, disk, bin_factor=2, mu=mu)
    counts = [m[f"n_mu_{name}"] for name, _, _ in metrics.MU_BANDS]
    assert sum(counts) == m["n_binned"] and min(counts) > metrics.MIN_REGION_PIXELS
    # each band by the binned mu: the centre band is the inner circle of radius 0.6 R
    disk_b = metrics.bin_mask(disk, 2)
    mu_b = metrics.bin_image(mu, 2)
    assert m["n_mu_centre"] == int((disk_b & (mu_b >= 0.8)).sum())
    assert m["n_mu_limb"] == int((disk_b & (mu_b < 0.5)).sum())
    for name, _, _ in metrics.MU_BANDS:
        assert 0.9 < m[f"cc_binned_mu_{name}"] < 1.0
    assert math.isnan(metrics.compare(real, real, disk, bin_factor=2)["cc_binned_mu_centre"])


def test_leading_polarity_of_a_known_region():
    """The generated map's net field over the true leading polarity's pixels near its centre
    decides; a leading polarity with no pixel on the disk is not scored."""
    y, x = np.indices((64, 64))
    real = (-1200.0 * np.exp(-((x - 40) ** 2 + (y - 30) ** 2) / 8.0)      # leading: negative
            + 600.0 * np.exp(-((x - 28) ** 2 + (y - 31) ** 2) / 18.0))    # following
    disk = np.ones_like(real, bool)
    lead, follow = (40.0, 30.0), (28.0, 31.0)
    assert metrics.leading_polarity_right(real, real, disk, lead, follow, -1) is True
    assert metrics.leading_polarity_right(-real, real, disk, lead, follow, -1) is False
    # |B| alone, with the following polarity's sign everywhere: wrong
    assert metrics.leading_polarity_right(np.abs(real), real, disk, lead, follow, -1) is False
    disk[:, 34:] = False
    assert metrics.leading_polarity_right(real, real, disk, lead, follow, -1) is None
