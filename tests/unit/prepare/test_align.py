"""align: limb radius and centre in the data, header WCS, north up (HMI 180 deg, EUVI roll), and
agreement with an independent sunpy/reproject computation on sunpy's real test observations."""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest
import sunpy.data.test
import sunpy.map
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from scipy import ndimage

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_fits, set_mjd_keywords
from farside_gan.prepare.align import align_file, align_frame

SIZE, RSUN_PX = 128, 450 / 8          # the 1024 / 450 geometry scaled by 1/8
TOL_PX = 1.0 / 8                      # "450 +- 1 px", scaled
DSUN = 1.496e11
RSUN_REF = 6.957e8
RSUN_ARCSEC = np.degrees(np.arcsin(RSUN_REF / DSUN)) * 3600


def scene(lon, lat):
    """Analytic Sun in arcsec: disk of 100, a bright +300 blob in the north-east, a -200 blob in
    the south-west (distinguishes N/S and E/W), 0 off the disk."""
    r = np.hypot(lon, lat)
    values = np.where(r <= RSUN_ARCSEC, 100.0, 0.0)
    values += 300.0 * (np.hypot(lon + 300, lat - 400) < 150)
    values -= 200.0 * (np.hypot(lon - 350, lat + 250) < 120)
    return values


def render(wcs: WCS, shape, supersample: int = 1):
    """The scene at pixel centres (averaged over supersample^2 sub-pixels) of ``wcs``."""
    s = supersample
    offs = (np.arange(s) + 0.5) / s - 0.5
    y, x = np.indices(shape, dtype=float)
    total = np.zeros(shape)
    for dy in offs:
        for dx in offs:
            lon, lat = wcs.pixel_to_world_values(x + dx, y + dy)
            lon = (np.asarray(lon) + 180) % 360 - 180
            total += scene(lon * 3600, lat * 3600)
    return total / s**2


def make_frame(instrument="aia", n=256, crota=0.0, shift=(0.0, 0.0), cdelt=None, hgln=0.0):
    """A raw-like frame whose data is the scene as its own header's WCS sees it."""
    cdelt = cdelt or 2.2 * RSUN_ARCSEC / n
    h = fits.Header()
    h["NAXIS"], h["NAXIS1"], h["NAXIS2"] = 2, n, n
    h["CTYPE1"], h["CTYPE2"], h["CUNIT1"], h["CUNIT2"] = "HPLN-TAN", "HPLT-TAN", "arcsec", "arcsec"
    h["CDELT1"] = h["CDELT2"] = cdelt
    h["CRPIX1"], h["CRPIX2"] = (n + 1) / 2 + shift[0], (n + 1) / 2 + shift[1]
    h["CRVAL1"] = h["CRVAL2"] = 0.0
    h["DATE-OBS"] = "2012-03-04T12:00:01.5"
    h["DSUN_OBS"], h["HGLN_OBS"], h["HGLT_OBS"], h["RSUN_REF"] = DSUN, hgln, -7.1, RSUN_REF
    h["RSUN_OBS"] = RSUN_ARCSEC
    h["EXPTIME"], h["QUALITY"] = 2.0, 0
    if instrument == "aia":
        h["TELESCOP"], h["INSTRUME"], h["WAVELNTH"], h["CROTA2"] = "SDO/AIA", "AIA_4", 193, crota
    elif instrument == "hmi":
        h["TELESCOP"], h["INSTRUME"], h["CONTENT"], h["CROTA2"] = "SDO/HMI", "HMI_SIDE1", "MAGNETOGRAM", crota
        h["BUNIT"] = "Gauss"
    else:
        h["TELESCOP"], h["INSTRUME"], h["DETECTOR"], h["OBSRVTRY"] = "STEREO", "SECCHI", "EUVI", "STEREO_A"
        h["WAVELNTH"], h["RSUN"] = 195, RSUN_ARCSEC
        c, s = np.cos(np.radians(crota)), np.sin(np.radians(crota))
        h["PC1_1"], h["PC1_2"], h["PC2_1"], h["PC2_2"] = c, -s, s, c
    # the header stays as an archive writes it (no MJD-OBS); the MJD only spares the test's own
    # WCS astropy's datfix warning
    data = render(WCS(set_mjd_keywords(h.copy())), (n, n), supersample=2).astype(np.float32)
    return data, h


def effective_radius_and_centre(image, level):
    """Radius from the disk's area (fraction of ``level`` covered, which counts partial limb
    pixels), and the centroid of that coverage, in 0-based pixels."""
    cover = np.clip(image / level, 0, 1)
    area = cover.sum()
    y, x = np.indices(image.shape)
    return np.sqrt(area / np.pi), (float((cover * x).sum() / area), float((cover * y).sum() / area))


def flat_disk(instrument="aia", n=256, crota=0.0, shift=(0.0, 0.0)):
    data, h = make_frame(instrument, n, crota, shift)
    wcs = WCS(set_mjd_keywords(h.copy()))  # (MJD: see make_frame)
    y, x = np.indices((n, n), dtype=float)
    # exact area coverage of the limb by 4x4 sub-pixels
    cover = np.zeros((n, n))
    for dy in (np.arange(4) + 0.5) / 4 - 0.5:
        for dx in (np.arange(4) + 0.5) / 4 - 0.5:
            lon, lat = wcs.pixel_to_world_values(x + dx, y + dy)
            lon = (np.asarray(lon) + 180) % 360 - 180
            cover += np.hypot(lon, lat) * 3600 <= RSUN_ARCSEC
    return (100.0 * cover / 16).astype(np.float32), h


@pytest.mark.parametrize("instrument,crota,shift", [("aia", 0.3, (6.4, -3.2)),
                                                   ("hmi", 179.93, (-2.5, 4.75)),
                                                   ("euvi", 3.85, (10.2, 7.9))])
def test_limb_at_rsun_px_from_centre_in_the_data(instrument, crota, shift):
    data, h = flat_disk(instrument, 256, crota, shift)
    out, _ = align_frame(data, h, size=SIZE, rsun_px=RSUN_PX, mask_radius=1.2)
    radius, (cx, cy) = effective_radius_and_centre(out, 100.0)
    assert radius == pytest.approx(RSUN_PX, abs=TOL_PX)
    assert cx == pytest.approx((SIZE - 1) / 2, abs=0.05)
    assert cy == pytest.approx((SIZE - 1) / 2, abs=0.05)


def test_mask_and_fill_beyond_mask_radius():
    data, h = make_frame("aia", 256)
    out, header = align_frame(data + 5.0, h, size=SIZE, rsun_px=RSUN_PX, mask_radius=0.98, fill=-7.0)
    r = np.hypot(*(np.indices(out.shape) - (SIZE - 1) / 2))
    assert np.all(out[r > 0.98 * RSUN_PX] == -7.0)
    assert np.all(out[r < 0.95 * RSUN_PX] != -7.0)
    assert np.median(out[r < 0.95 * RSUN_PX]) == pytest.approx(105.0, abs=0.5)
    assert header["MASKRAD"] == 0.98 and header["FILLVAL"] == -7.0


def test_header_wcs_places_centre_limb_and_keeps_observer():
    data, h = make_frame("aia", 256, crota=0.3, shift=(6.4, -3.2))
    out, header = align_frame(data, h, size=SIZE, rsun_px=RSUN_PX)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = sunpy.map.Map(out, header)
    centre = m.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=m.coordinate_frame))
    assert centre.x.value == pytest.approx((SIZE - 1) / 2, abs=1e-6)
    assert centre.y.value == pytest.approx((SIZE - 1) / 2, abs=1e-6)
    limb = m.world_to_pixel(SkyCoord(0 * u.arcsec, m.rsun_obs, frame=m.coordinate_frame))
    assert limb.y.value - (SIZE - 1) / 2 == pytest.approx(RSUN_PX, abs=1e-3)
    assert m.rsun_obs.to_value(u.arcsec) == pytest.approx(RSUN_ARCSEC, rel=1e-9)
    assert m.observer_coordinate.lon.to_value(u.deg) == pytest.approx(0.0, abs=1e-9)
    assert m.observer_coordinate.lat.to_value(u.deg) == pytest.approx(-7.1, abs=1e-9)
    assert m.dsun.to_value(u.m) == pytest.approx(DSUN, rel=1e-9)
    assert m.date.isot.startswith("2012-03-04T12:00:01.5")
    assert m.rotation_matrix == pytest.approx(np.eye(2))
    assert header["INSTRUME"] == "AIA_4" and header["WAVELNTH"] == 193 and header["LVL_NUM"] == 1.5
    # sunpy's limb (from RSUN_REF and the observer) sits at rsun_px as well
    assert (m.rsun_meters / m.dsun).decompose().value == pytest.approx(np.sin(m.rsun_obs.to_value(u.rad)))


@pytest.mark.parametrize("instrument,crota", [("hmi", 179.93), ("euvi", 3.85), ("aia", 0.02)])
def test_north_up_matches_truth(instrument, crota):
    """The raw data are rotated by the header's CROTA/PC; after align they must match the scene
    rendered directly on the output grid (north up, east left)."""
    data, h = make_frame(instrument, 256, crota, shift=(3.3, -1.7))
    out, header = align_frame(data, h, size=SIZE, rsun_px=RSUN_PX, mask_radius=0.98)
    truth = render(WCS(header), (SIZE, SIZE), supersample=4)
    disk = np.hypot(*(np.indices(out.shape) - (SIZE - 1) / 2)) < 0.95 * RSUN_PX
    assert np.corrcoef(out[disk], truth[disk])[0, 1] > 0.97
    # the bright blob is in the north-east quadrant: above and left of the centre
    y, x = np.indices(out.shape)
    bright = out > 250
    assert bright.sum() > 20
    assert y[bright].mean() > (SIZE - 1) / 2 + 10 and x[bright].mean() < (SIZE - 1) / 2 - 5
    if instrument == "hmi":  # and the raw HMI frame really was upside down
        yr, xr = np.indices(data.shape)
        assert yr[data > 250].mean() < (data.shape[0] - 1) / 2


@pytest.mark.parametrize("name", ["aia_171_level1.fits", "resampled_hmi.fits"])
def test_real_observation_agrees_with_sunpy_reproject(tmp_path, name):
    """Geometry: at a scale with no anti-aliasing (128 px output) our resampling equals
    reproject's exact WCS interpolation; at 2x downsampling (64 px) it agrees with reproject's
    anti-aliased adaptive resampling up to the smoothing kernel, with no shift."""
    path = sunpy.data.test.get_test_filepath(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = sunpy.map.Map(path)
    for size, algorithm, min_cc in ((128, "interpolation", 0.9999), (64, "adaptive", 0.98)):
        rsun_px = 450 * size / 1024
        align_file(path, tmp_path / "a.fits", size=size, rsun_px=rsun_px, mask_radius=1.5)
        out, header = read_fits(tmp_path / "a.fits")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = np.nan_to_num(raw.reproject_to(WCS(header), algorithm=algorithm).data)
        disk = np.hypot(*(np.indices(out.shape) - (size - 1) / 2)) < 0.95 * rsun_px
        a, b = ndimage.gaussian_filter(out, 1.0), ndimage.gaussian_filter(reference, 1.0)
        assert np.corrcoef(a[disk], b[disk])[0, 1] > min_cc
        assert out[disk].mean() == pytest.approx(reference[disk].mean(), rel=0.003)
        shifted = {(dy, dx): np.corrcoef(ndimage.shift(a, (dy, dx), order=1)[disk], b[disk])[0, 1]
                   for dy in (-0.25, 0, 0.25) for dx in (-0.25, 0, 0.25)}
        assert max(shifted, key=shifted.get) == (0, 0)
    # north is up and the observer kept
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = sunpy.map.Map(out, header)
        north = m.world_to_pixel(SkyCoord(0 * u.arcsec, m.rsun_obs, frame=m.coordinate_frame))
    assert north.x.value == pytest.approx((size - 1) / 2, abs=1e-6)
    assert north.y.value - (size - 1) / 2 == pytest.approx(rsun_px, abs=1e-3)
    assert m.observer_coordinate.lat.to_value(u.deg) == pytest.approx(
        raw.observer_coordinate.lat.to_value(u.deg), abs=1e-6)
    assert m.dsun.to_value(u.m) == pytest.approx(raw.dsun.to_value(u.m), rel=1e-9)


def test_header_without_observer_is_an_input_error():
    data, h = make_frame("aia", 64)
    for key in ("DSUN_OBS", "HGLN_OBS", "HGLT_OBS"):
        del h[key]
    with pytest.raises(InputDataError, match="raw.fits"):
        align_frame(data, h, size=32, rsun_px=14, path="raw.fits")


def test_synthetic_hmi_is_north_up_against_the_synthetic_truth(synthetic_archive, synthetic_sun, tmp_path):
    import csv

    from farside_gan.prepare.calibrate import calibrate_file

    with open(synthetic_archive / "catalog.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["instrument"] == "hmi")
    raw_path = synthetic_archive / row["path"]
    assert abs(fits.getheader(raw_path)["CROTA2"] - 180) < 1  # the raw frame is upside down
    calibrate_file(raw_path, tmp_path / "c.fits")
    align_file(tmp_path / "c.fits", tmp_path / "a.fits", size=64, rsun_px=450 / 16, mask_radius=0.98)
    out, header = read_fits(tmp_path / "a.fits")
    truth = np.nan_to_num(synthetic_sun.los_field(header))
    disk = np.hypot(*(np.indices(out.shape) - 31.5)) < 0.9 * 450 / 16
    a, b = ndimage.gaussian_filter(out, 1.0), ndimage.gaussian_filter(truth, 1.0)
    cc = np.corrcoef(a[disk], b[disk])[0, 1]
    cc_flipped = np.corrcoef(a[disk], b[::-1, ::-1][disk])[0, 1]
    assert cc > 0.97 and abs(cc_flipped) < 0.3


def test_real_euvi_header_roll_and_observer(tmp_path):
    """sunpy's real STEREO-A EUVI header (level 0.5, 128 px binned, roll 3.85 deg via PC, observer
    51.8 deg west): data rendered through that header's WCS, then calibrate + align, must match
    the scene on the output grid and keep STEREO-A as the observer."""
    from farside_gan.prepare.calibrate import calibrate_frame

    header = fits.Header.fromfile(
        sunpy.data.test.get_test_filepath("euvi_20090615_000900_n4euA_s.header"),
        sep="\n", endcard=False, padding=False)
    n = header["NAXIS1"]
    assert header["CROTA"] == pytest.approx(3.845, abs=1e-3)
    # the scene's disk radius is RSUN_ARCSEC; this observer sees the Sun larger, so scale the scene
    scale = header["RSUN"] / RSUN_ARCSEC
    wcs = WCS(set_mjd_keywords(header.copy())).celestial  # (MJD: see make_frame)
    y, x = np.indices((n, n), dtype=float)
    lon, lat = wcs.pixel_to_world_values(x, y)
    lon = (np.asarray(lon) + 180) % 360 - 180
    counts = scene(lon * 3600 / scale, lat * 3600 / scale) * header["EXPTIME"] + header["BIASMEAN"]
    cal, hcal = calibrate_frame(counts.astype(np.float32), header)
    out, h = align_frame(cal, hcal, size=64, rsun_px=450 / 16, mask_radius=0.98)
    assert h["RSUN_OBS"] == pytest.approx(header["RSUN"], rel=1e-9)
    assert h["HGLN_OBS"] == pytest.approx(header["HGLN_OBS"], abs=1e-6)
    assert h["OBSRVTRY"] == "STEREO_A" and h["DETECTOR"] == "EUVI"
    out_wcs = WCS(h)
    yo, xo = np.indices((64, 64), dtype=float)
    lon, lat = out_wcs.pixel_to_world_values(xo, yo)
    lon = (np.asarray(lon) + 180) % 360 - 180
    truth = scene(lon * 3600 / scale, lat * 3600 / scale)
    disk = np.hypot(xo - 31.5, yo - 31.5) < 0.9 * 450 / 16
    assert np.corrcoef(out[disk], truth[disk])[0, 1] > 0.95
    assert abs(np.corrcoef(out[disk], truth[::-1][disk])[0, 1]) < 0.3  # north is not south
    assert np.median(out[disk]) == pytest.approx(100.0, rel=0.01)  # bias and exposure removed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = sunpy.map.Map(out, h)
    assert m.observer_coordinate.lon.to_value(u.deg) == pytest.approx(51.801, abs=1e-3)
    assert m.rsun_obs.to_value(u.arcsec) == pytest.approx(header["RSUN"], rel=1e-9)
