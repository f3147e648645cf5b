"""quality: every drop reason, with the file named in the message; good frames pass."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
import sunpy.data.test
from astropy.io import fits

from farside_gan.acquire.quality import check_file, check_frame
from farside_gan.core.errors import InputDataError
from farside_gan.core.instruments import instrument_of, parse_time, reference_time


def aia_header(**changes) -> fits.Header:
    h = fits.Header({
        "TELESCOP": "SDO/AIA", "INSTRUME": "AIA_4", "WAVELNTH": 193, "DATE-OBS": "2012-03-04T12:00:04.84",
        "T_OBS": "2012-03-04T12:00:05.84Z", "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN",
        "CUNIT1": "arcsec", "CUNIT2": "arcsec", "CROTA2": 0.1,
        "CRPIX1": 32.5, "CRPIX2": 32.5, "CRVAL1": 0.0, "CRVAL2": 0.0, "CDELT1": 38.4, "CDELT2": 38.4,
        "DSUN_OBS": 1.4836e11, "HGLN_OBS": 0.0, "HGLT_OBS": -7.2, "RSUN_REF": 6.96e8,
        "RSUN_OBS": 967.7, "QUALITY": 0, "EXPTIME": 2.0, "ACS_ECLP": "NO"})
    for k, v in changes.items():
        if v is None:
            del h[k.replace("_", "-") if k == "DATE_OBS" else k]
        else:
            h[k] = v
    return h


GOOD = np.linspace(50, 150, 64 * 64, dtype=np.float32).reshape(64, 64)  # on the disk, not constant


def test_good_frame_passes_and_is_identified():
    check_frame(GOOD, aia_header(), "aia", 193, path="f.fits")
    assert instrument_of(aia_header()) == "aia"


@pytest.mark.parametrize("changes,reason,words", [
    ({"QUALITY": 0x20000}, "quality_flag", "QUALITY"),
    ({"DATE_OBS": None}, "missing_keyword", "DATE-OBS"),
    ({"DSUN_OBS": None}, "missing_keyword", "DSUN_OBS"),
    ({"WAVELNTH": 171}, "wrong_channel", "channel 171, expected 193"),
    ({"TELESCOP": "SDO/HMI", "INSTRUME": "HMI_SIDE1"}, "wrong_channel", "from hmi"),
    ({"ACS_ECLP": "YES"}, "eclipse", "eclipse"),
    ({"RSUN_OBS": 900.0}, "inconsistent_header", "RSUN_OBS"),
    ({"DATE-OBS": "yesterday"}, "inconsistent_header", "DATE-OBS"),
    ({"CDELT1": 0.0}, "out_of_range", "CDELT1"),
])
def test_bad_header_gives_reason_and_names_the_file(changes, reason, words):
    with pytest.raises(InputDataError) as err:
        check_frame(GOOD, aia_header(**changes), "aia", 193, path="/data/aia.193.fits")
    assert err.value.reason == reason
    assert "/data/aia.193.fits" in str(err.value) and words in str(err.value)


def test_mostly_nan_is_dropped_but_hmi_off_disk_nan_passes():
    hmi = aia_header(TELESCOP="SDO/HMI", INSTRUME="HMI_SIDE1", CONTENT="MAGNETOGRAM")
    y, x = np.indices((64, 64))
    off_disk = np.hypot(x - 31.5, y - 31.5) > 28  # ~40 % of the frame, like HMI's corners
    field = np.where(off_disk, np.nan, 5.0 + x / 10).astype(np.float32)
    check_frame(field, hmi, "hmi", "magnetogram")
    field[:40] = np.nan
    with pytest.raises(InputDataError, match="% of the pixels are NaN") as err:
        check_frame(field, hmi, "hmi", "magnetogram", path="m.fits")
    assert err.value.reason == "mostly_nan"


def test_configured_eclipse_period_drops_frame():
    periods = [("2012-03-04T11:00:00", "2012-03-04T13:00:00")]
    with pytest.raises(InputDataError, match="eclipse/transit") as err:
        check_frame(GOOD, aia_header(), "aia", 193, eclipse_periods=periods)
    assert err.value.reason == "eclipse"
    check_frame(GOOD, aia_header(), "aia", 193, eclipse_periods=[("2012-03-05", "2012-03-06")])


def test_reference_time_is_mid_exposure_utc():
    hmi = fits.Header({"DATE-OBS": "2011-01-01T11:53:26.00", "T_OBS": "2011.01.01_12:00:00_TAI"})
    # TAI - UTC = 34 s in 2011
    assert reference_time(hmi) == datetime(2011, 1, 1, 11, 59, 26)
    assert reference_time(aia_header()) == datetime(2012, 3, 4, 12, 0, 5, 840000)
    assert reference_time(fits.Header({"DATE-OBS": "2011-01-01T00:05:30.000",
                                       "DATE-AVG": "2011-01-01T00:05:38.000"})) == datetime(2011, 1, 1, 0, 5, 38)
    assert parse_time("2011.01.01_00:00:00_TAI") == datetime(2011, 1, 1)


def test_sunpy_real_aia_file_passes():
    data, header = check_file(sunpy.data.test.get_test_filepath("aia_171_level1.fits"), "aia", 171)
    assert data.shape == (128, 128)


def test_synthetic_bad_files_get_their_reason_codes(bad_files):
    from farside_gan.testing.bad_files import BAD_FILES

    for defect, path in bad_files.items():
        instrument, channel, _, reason = BAD_FILES[defect]
        with pytest.raises(InputDataError) as err:
            check_file(path, instrument, channel)
        assert err.value.reason == reason, defect
        assert str(path) in str(err.value)


def test_synthetic_archive_frames_pass(synthetic_archive):
    import csv

    with open(synthetic_archive / "catalog.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 10
    for row in rows:
        check_file(synthetic_archive / row["path"], row["instrument"], row["channel"])
