"""The bad files (``farside_gan.testing.bad_files``) each have exactly their defect and are
otherwise valid FITS."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_fits
from farside_gan.testing.bad_files import BAD_FILES, QUALITY_FLAG


def test_bad_files_have_exactly_their_defect(bad_files):
    assert set(bad_files) == set(BAD_FILES)
    with pytest.raises(InputDataError) as excinfo:
        read_fits(bad_files["truncated"])
    assert excinfo.value.reason == "corrupt_fits"
    assert str(bad_files["truncated"]) in str(excinfo.value)

    data, header = read_fits(bad_files["missing_date_obs"])
    assert "DATE-OBS" not in header and header["WAVELNTH"] == 171 and np.isfinite(data).all()

    data, header = read_fits(bad_files["all_nan"])
    assert np.isnan(data).all() and header["BUNIT"] == "Gauss"

    _, header = read_fits(bad_files["quality_flagged"])
    assert header["QUALITY"] == QUALITY_FLAG != 0

    _, header = read_fits(bad_files["wrong_channel"])
    assert ".171." in bad_files["wrong_channel"].name and header["WAVELNTH"] == 193
    for defect in ("missing_date_obs", "all_nan", "quality_flagged", "wrong_channel"):
        with fits.open(bad_files[defect], checksum=True) as hdul:   # valid FITS, valid checksums
            assert hdul[0].header["CHECKSUM"]
