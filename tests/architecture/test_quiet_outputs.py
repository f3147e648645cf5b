"""Noise that hides real messages: the headers we write leave astropy's WCS nothing to fix (no
'datfix' FITSFixedWarning for MJD-OBS/-AVG/-END), all the way from align to the maps made from
them (stack, generated magnetogram, synthetic truth)."""

from __future__ import annotations

import warnings
from datetime import datetime

import pytest
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS, FITSFixedWarning
from helpers.model import synthetic_pipeline_frames


def wcs_fixes(header: fits.Header) -> list[str]:
    """What astropy's WCS would fix in this header (its FITSFixedWarnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        WCS(header)
    return [str(w.message) for w in caught if issubclass(w.category, FITSFixedWarning)]


@pytest.fixture(scope="module")
def euvi_frames(tmp_path_factory, synthetic_sun):
    """EUVI-A 304/195/171 through calibrate -> align -> normalize, with any warnings of align
    (which reads its own output header with WCS) recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = synthetic_pipeline_frames(tmp_path_factory.mktemp("euvi"), synthetic_sun, None,
                                           "euvi_a", datetime(2011, 1, 1), size=64, raw_size=96)
    return frames, [str(w.message) for w in caught if issubclass(w.category, FITSFixedWarning)]


def test_aligned_frames_carry_the_mjd_of_each_date(euvi_frames):
    frames, align_warnings = euvi_frames
    assert align_warnings == []
    for _, header in frames:
        # EUVI has the start, middle and end of the exposure; each gets its MJD twin
        for date, mjd in (("DATE-OBS", "MJD-OBS"), ("DATE-AVG", "MJD-AVG"), ("DATE-END", "MJD-END")):
            assert header[mjd] == pytest.approx(Time(header[date], scale="utc").mjd, abs=1e-9)
        assert wcs_fixes(header) == []


def test_maps_made_from_aligned_frames_leave_nothing_to_fix(euvi_frames, synthetic_sun):
    from farside_gan.prepare.stack import stack_frames
    from farside_gan.products.magnetogram import magnetogram_header
    from farside_gan.synthetic.truth import truth_map

    frames, _ = euvi_frames
    _, stack = stack_frames(frames)
    generated = magnetogram_header(stack, "stack.fits", "generator.pt", "0" * 64, 3000.0)
    _, truth = truth_map(synthetic_sun, stack, "stack.fits")
    for header in (stack, generated, truth):
        assert header["MJD-OBS"] == pytest.approx(Time(header["DATE-OBS"]).mjd, abs=1e-9)
        assert wcs_fixes(header) == []


def test_bad_files_are_bad_only_in_their_own_way(bad_files):
    """The empty-data defects keep AIA's stored int16 pixels under its BLANK keyword (float data
    with BLANK made astropy warn of an invalid keyword on top of the defect under test)."""
    from astropy.io.fits.verify import VerifyWarning
    for defect in ("aia_all_zero", "partly_empty"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", VerifyWarning)
            with fits.open(bad_files[defect]) as hdul:
                assert hdul[0].header["BITPIX"] == 16 and hdul[0].header["BLANK"] == -32768
                assert (hdul[0].data == 0).any()


def test_demo_calibration_tables_load_without_erfa_warnings(tmp_path):
    """Their validity ends where ERFA still trusts UTC (it calls later years dubious)."""
    from farside_gan.prepare.calibrate import load_calibration_tables, write_demo_calibration_tables
    write_demo_calibration_tables(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pointing, correction = load_calibration_tables(tmp_path)
    assert pointing["T_STOP"][0].isot.startswith("2028") and pointing["T_START"][0].jd < \
        Time("2011-01-01").jd
