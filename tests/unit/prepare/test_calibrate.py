"""calibrate: AIA pointing (aiapy at 4096 px, scaled for binned frames), degradation and exposure
from table files; HMI NaN handling; EUVI bias/exposure; errors name the file."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import sunpy.data.test
from astropy.io import fits
from astropy.table import QTable
from astropy.time import Time

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_fits
from farside_gan.prepare.calibrate import (CalibrationError, _write_tables, calibrate_file,
                                           calibrate_frame, load_calibration_tables,
                                           update_aia_pointing, write_demo_calibration_tables)

AIA_FILE = sunpy.data.test.get_test_filepath("aia_171_level1.fits")


def tables(tmp_path, x0=2051.25, y0=2040.5, scale=0.6012, instrot=0.031, ratio=0.8, p1=-1e-4):
    """Table files in aiapy's format with known values: pointing entries for 171/193 covering
    2011, degradation epochs 2010-2011 (area 1) and 2011-2013 (area ``ratio``, slope ``p1``/day)."""
    pointing = QTable()
    pointing["T_START"] = Time(["2010-06-01T00:00:00", "2011-02-14T21:00:00"], scale="utc")
    pointing["T_STOP"] = Time(["2011-02-14T21:00:00", "2011-12-31T00:00:00"], scale="utc")
    for ch in (171, 193):
        pointing[f"A_{ch}_X0"] = [2047.0, x0] * u.pix
        pointing[f"A_{ch}_Y0"] = [2047.0, y0] * u.pix
        pointing[f"A_{ch}_IMSCALE"] = [0.6, scale] * u.arcsec / u.pix
        pointing[f"A_{ch}_INSTROT"] = [0.0, instrot] * u.deg
    rows = [("2020-01-01", 9, "171_THIN", 171.0, "2010-03-24T00:00:00", "2011-01-01T00:00:00", 0.0, 0.0, 0.0, 1.0, 171.0),
            ("2020-01-01", 9, "171_THIN", 171.0, "2011-01-01T00:00:00", "2013-01-01T00:00:00", p1, 0.0, 0.0, ratio, 171.0)]
    correction = QTable(rows=rows, names=("DATE", "VER_NUM", "WAVE_STR", "WAVELNTH", "T_START", "T_STOP",
                                          "EFFA_P1", "EFFA_P2", "EFFA_P3", "EFF_AREA", "EFF_WVLN"))
    _write_tables(tmp_path, pointing, correction)
    load_calibration_tables.cache_clear()
    return tmp_path


def test_aia_exposure_degradation_and_pointing_from_table_files(tmp_path):
    cal = tables(tmp_path / "cal")
    raw, header = read_fits(AIA_FILE)
    out, h = calibrate_frame(raw, header, calibration_dir=cal, path=AIA_FILE)
    # DATE-OBS 2011-02-15T00:00:00.34: 45.0000039 days into the second epoch
    dt = (Time("2011-02-15T00:00:00.34") - Time("2011-01-01T00:00:00")).to_value(u.day)
    factor = 0.8 * (1 - 1e-4 * dt)
    expected = raw / (factor * header["EXPTIME"])
    np.testing.assert_allclose(out, expected, rtol=2e-6)
    assert out.dtype == np.float32 and out.shape == raw.shape
    assert h["DEGRADAT"] == pytest.approx(factor, rel=1e-9)
    assert h["BUNIT"] == "DN/s" and h["EXPTIME"] == 1.0
    # binned 128 px frame: the 4096-px table entry scaled by 32
    assert h["CRPIX1"] == pytest.approx((2051.25 + 0.5) / 32 + 0.5)
    assert h["CRPIX2"] == pytest.approx((2040.5 + 0.5) / 32 + 0.5)
    assert h["CDELT1"] == pytest.approx(0.6012 * 32) and h["CDELT2"] == pytest.approx(0.6012 * 32)
    assert h["CROTA2"] == pytest.approx(0.031 + header["SAT_ROT"])
    assert "PC1_1" not in h
    assert any("pointing" in str(x) for x in h["HISTORY"])


def test_full_resolution_pointing_goes_through_aiapy_and_matches_scaled_path(tmp_path):
    cal = tables(tmp_path / "cal")
    pointing, _ = load_calibration_tables(str(cal))
    raw, header = read_fits(AIA_FILE)
    header["NAXIS1"] = header["NAXIS2"] = 4096
    header["CRPIX1"] = header["CRPIX2"] = 2048.5
    header["CDELT1"] = header["CDELT2"] = 0.6
    full = np.zeros((4096, 4096), np.float32)  # calloc: no real memory touched
    h = update_aia_pointing(full, header, pointing)
    assert h["CRPIX1"] == pytest.approx(2051.25 + 1) and h["CRPIX2"] == pytest.approx(2040.5 + 1)
    assert h["CDELT1"] == pytest.approx(0.6012)
    assert h["CROTA2"] == pytest.approx(0.031 + header["SAT_ROT"])


def test_demo_tables_leave_pointing_and_scale_unchanged(tmp_path):
    write_demo_calibration_tables(tmp_path)
    load_calibration_tables.cache_clear()
    raw, header = read_fits(AIA_FILE)
    pass_through = update_aia_pointing(np.zeros((4096, 4096), np.float32), _full(header),
                                       load_calibration_tables(str(tmp_path))[0])
    assert pass_through["CRPIX1"] == 2048.5 and pass_through["CDELT1"] == 0.6
    assert "MISSING" in str(pass_through["HISTORY"])
    out, h = calibrate_frame(raw, header, calibration_dir=tmp_path)
    np.testing.assert_allclose(out, raw / header["EXPTIME"], rtol=2e-6)
    assert h["CRPIX1"] == header["CRPIX1"] and h["CDELT1"] == header["CDELT1"]
    assert h["CROTA2"] == header["CROTA2"]


def _full(header):
    h = header.copy()
    h["NAXIS1"] = h["NAXIS2"] = 4096
    h["CRPIX1"] = h["CRPIX2"] = 2048.5
    h["CDELT1"] = h["CDELT2"] = 0.6
    return h


def test_aia_without_tables_or_outside_table_is_an_error(tmp_path):
    raw, header = read_fits(AIA_FILE)
    with pytest.raises(CalibrationError, match="--calibration-dir"):
        calibrate_frame(raw, header)
    with pytest.raises(CalibrationError, match="calibration table missing"):
        calibrate_frame(raw, header, calibration_dir=tmp_path)
    cal = tables(tmp_path / "cal")
    header["DATE-OBS"] = header["T_OBS"] = "2014-06-01T00:00:00"
    with pytest.raises(CalibrationError, match="no pointing table entry"):
        calibrate_frame(raw, header, calibration_dir=cal)


def test_hmi_nans_become_zero_gauss(tmp_path):
    field = np.full((32, 32), 120.0, np.float32)
    field[:4] = np.nan
    field[5, 5] = np.inf
    header = fits.Header({"TELESCOP": "SDO/HMI", "INSTRUME": "HMI_SIDE1", "CONTENT": "MAGNETOGRAM",
                          "BUNIT": "Gauss", "CROTA2": 180.0})
    out, h = calibrate_frame(field, header)
    assert np.isfinite(out).all() and out[:4].max() == 0 and out[5, 5] == 0
    assert out[10, 10] == 120.0 and h["BUNIT"] == "Gauss" and h["CROTA2"] == 180.0
    assert any("129 NaN/inf pixels" in str(x) for x in h["HISTORY"])


def test_euvi_bias_summing_and_exposure():
    counts = np.full((16, 16), 2724.545, np.float32)
    header = fits.Header({"DETECTOR": "EUVI", "OBSRVTRY": "STEREO_A", "INSTRUME": "SECCHI",
                          "EXPTIME": 16.0, "BIASMEAN": 724.545, "OFFSETCR": 0.0, "IPSUM": 1.0})
    out, h = calibrate_frame(counts, header)
    np.testing.assert_allclose(out, 2000.0 / 16.0, rtol=1e-5)
    assert h["OFFSETCR"] == pytest.approx(724.545) and h["BUNIT"] == "DN/s"
    header.update(OFFSETCR=700.0, IPSUM=2.0)  # bias already removed on board; 2x2 summed
    out, _ = calibrate_frame(counts, header)
    np.testing.assert_allclose(out, 2724.545 / 16.0 / 4.0, rtol=1e-5)


def test_bad_inputs_name_the_file(tmp_path, bad_files):
    header = fits.Header({"DETECTOR": "EUVI", "OBSRVTRY": "STEREO_B", "EXPTIME": 0.0})
    with pytest.raises(InputDataError, match=r"raw.fts: EXPTIME = 0 s is outside the physical range"):
        calibrate_frame(np.ones((8, 8)), header, path="raw.fts")
    with pytest.raises(InputDataError, match="no known instrument"):
        calibrate_frame(np.ones((8, 8)), fits.Header({"TELESCOP": "SOHO"}), path="x.fits")
    with pytest.raises(InputDataError) as err:
        calibrate_file(bad_files["truncated"], tmp_path / "c.fits")
    assert err.value.reason == "corrupt_fits" and str(bad_files["truncated"]) in str(err.value)
    assert not (tmp_path / "c.fits").exists()


def test_synthetic_frames_calibrate_to_physical_units(synthetic_archive, tmp_path):
    import csv

    write_demo_calibration_tables(tmp_path / "cal")
    load_calibration_tables.cache_clear()
    with open(synthetic_archive / "catalog.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["time"].startswith("2011-01-01T00")]
    for row in rows:
        out_path = tmp_path / f"{row['instrument']}_{row['channel']}.fits"
        calibrate_file(synthetic_archive / row["path"], out_path, calibration_dir=tmp_path / "cal")
        raw, raw_h = read_fits(synthetic_archive / row["path"])
        out, h = read_fits(out_path)
        assert out.dtype.newbyteorder("=") == np.float32 and out.shape == raw.shape
        if row["instrument"] == "hmi":
            assert h["BUNIT"] == "Gauss" and np.isfinite(out).all()
        else:
            assert h["BUNIT"] == "DN/s"
            np.testing.assert_allclose(np.nanmedian(out), np.nanmedian(raw) / raw_h["EXPTIME"], rtol=1e-4)


def _sun_centre_px(data, header) -> np.ndarray:
    """Where sunpy puts the Sun's centre (helioprojective 0", 0") in a frame: 0-based (x, y)."""
    import warnings

    import sunpy.map
    from astropy.coordinates import SkyCoord
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = sunpy.map.Map(data, header)
        return np.array([float(c) for c in m.wcs.world_to_pixel(
            SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=m.coordinate_frame))])


def test_pointing_update_leaves_the_real_aia_sun_where_sunpy_puts_it(tmp_path):
    """sunpy's real AIA 171 file (128 px, binned 32) has CRVAL = (-4.53", 2.87"): its reference
    pixel is not the Sun's centre. A pointing table entry that agrees with the header (X0_MP,
    Y0_MP, its plate scale and roll) must not move the Sun: checked on the calibrated header and
    on the data after aligning to 1024 px (a uniform disk drawn where sunpy puts the Sun).
    Keeping CRVAL with the table's CRPIX put it 2.07 px off at 1024 px."""
    from farside_gan.prepare.align import align_frame
    raw, header = read_fits(AIA_FILE)
    assert (header["CRVAL1"], header["CRVAL2"]) == pytest.approx((-4.532, 2.866), abs=1e-3)
    binning = 4096 / raw.shape[1]
    cal = tables(tmp_path / "cal", x0=header["X0_MP"], y0=header["Y0_MP"],
                 scale=header["CDELT1"] / binning, instrot=header["INST_ROT"])
    expected = _sun_centre_px(raw, header)
    # the table entry agrees with sunpy's reading of the header to a hundredth of a pixel
    assert (np.array([header["X0_MP"], header["Y0_MP"]]) + 0.5) / binning - 0.5 == \
        pytest.approx(expected, abs=0.01)

    out, h = calibrate_frame(raw, header, calibration_dir=cal, path=AIA_FILE)
    assert h["CRVAL1"] == 0.0 and h["CRVAL2"] == 0.0
    np.testing.assert_allclose(_sun_centre_px(out, h), expected, atol=0.01)

    # the data: a smooth blob centred where sunpy says the Sun is, aligned to 1024 px
    yy, xx = np.indices(raw.shape)
    blob = 1.0 + 100.0 * np.exp(-((xx - expected[0]) ** 2 + (yy - expected[1]) ** 2) / (2 * 12.0 ** 2))
    aligned, _ = align_frame(blob.astype(np.float32), h, size=1024, rsun_px=450.0,
                             mask_radius=1.5, path=AIA_FILE)
    weight = aligned - 1.0
    yy, xx = np.indices(aligned.shape)
    centroid = np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()
    np.testing.assert_allclose(centroid, (1023 / 2, 1023 / 2), atol=0.05)
