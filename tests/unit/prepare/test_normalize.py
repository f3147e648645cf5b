"""normalize: EUV on-disk median 100 before the log, clip, [-1, 1]; HMI clip and round trip;
file-level normalization of aligned frames records its constants."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_fits, write_fits
from farside_gan.core.geometry import disk_mask
from farside_gan.prepare.normalize import (denormalize_euv, denormalize_hmi, normalize_euv,
                                           normalize_file, normalize_frame, normalize_hmi)

N, RSUN = 64, 450 / 16


def aligned_header(instrument="aia"):
    h = fits.Header({"R_SUN": RSUN, "MASKRAD": 0.98, "BUNIT": "DN/s",
                     "CRPIX1": (N + 1) / 2, "CRPIX2": (N + 1) / 2})
    if instrument == "aia":
        h.update(TELESCOP="SDO/AIA", INSTRUME="AIA_4", WAVELNTH=193)
    else:
        h.update(TELESCOP="SDO/HMI", INSTRUME="HMI_SIDE1", CONTENT="MAGNETOGRAM", BUNIT="Gauss")
    return h


def euv_image(seed=0):
    rng = np.random.default_rng(seed)
    disk = disk_mask(N, RSUN, 0.98)
    image = np.where(disk, rng.lognormal(np.log(350.0), 0.6, (N, N)), 0.0).astype(np.float32)
    return image, disk


def test_euv_on_disk_median_is_100_before_the_log():
    image, disk = euv_image()
    out = normalize_euv(image, disk)
    before_log = denormalize_euv(out)
    # within the clip the inverse is exact, and the median of the disk is 100
    assert np.median(before_log[disk]) == pytest.approx(100.0, rel=1e-4)
    assert out.min() >= -1 and out.max() <= 1 and out.dtype == np.float32
    assert np.all(out[~disk] == -1.0)  # fill 0 -> clipped to 1 -> log 0 -> -1
    scaled = image * 100.0 / np.median(image[disk])
    inside = disk & (scaled > 1) & (scaled < 200)
    np.testing.assert_allclose(before_log[inside], scaled[inside], rtol=1e-4)
    assert np.all(out[disk & (scaled >= 200)] == pytest.approx(1.0))


def test_hmi_round_trip_within_clip_and_clipped_outside():
    field = np.array([[-5000.0, -3000.0, -12.5], [0.0, 1234.5, np.nan]], np.float32)
    out = normalize_hmi(field)
    np.testing.assert_allclose(out, [[-1, -1, -12.5 / 3000], [0, 1234.5 / 3000, 0]], rtol=1e-6)
    np.testing.assert_allclose(denormalize_hmi(out), [[-3000, -3000, -12.5], [0, 1234.5, 0]], rtol=1e-5)
    assert normalize_hmi(field, clip=1000.0)[1, 1] == 1.0


def test_normalize_file_records_constants(tmp_path):
    image, disk = euv_image(1)
    write_fits(tmp_path / "a.fits", image, aligned_header("aia"))
    normalize_file(tmp_path / "a.fits", tmp_path / "n.fits", euv_median=50.0, euv_clip=(0.5, 400.0))
    out, h = read_fits(tmp_path / "n.fits")
    assert h["NORMMED"] == pytest.approx(float(np.median(image[disk])))
    assert (h["NORMTGT"], h["NORMCLO"], h["NORMCHI"]) == (50.0, 0.5, 400.0)
    assert h["BUNIT"] == ""
    assert np.median(denormalize_euv(out, (0.5, 400.0))[disk]) == pytest.approx(50.0, rel=1e-4)

    field = np.where(disk, 4000.0, 0.0).astype(np.float32)
    field[:10] = -800.0
    write_fits(tmp_path / "m.fits", field, aligned_header("hmi"))
    normalize_file(tmp_path / "m.fits", tmp_path / "mn.fits", hmi_clip=2000.0)
    out, h = read_fits(tmp_path / "mn.fits")
    assert h["NORMCLIP"] == 2000.0 and "NORMMED" not in h
    assert out[32, 32] == 1.0 and out[0, 0] == pytest.approx(-0.4)


def test_normalize_rejects_unaligned_and_dark_frames():
    image, _ = euv_image()
    header = aligned_header("aia")
    del header["MASKRAD"]
    with pytest.raises(InputDataError, match="x.fits: not an aligned frame"):
        normalize_frame(image, header, path="x.fits")
    with pytest.raises(InputDataError, match="x.fits: every pixel on the solar disk is 0 or NaN"):
        normalize_frame(np.zeros((N, N), np.float32), aligned_header("aia"), path="x.fits")
    dark, disk = euv_image()
    dark[disk] = -3.0  # positive nowhere: no median to scale by
    with pytest.raises(InputDataError, match="median is not positive") as err:
        normalize_frame(dark + np.indices(dark.shape)[0] * 1e-3 * disk, aligned_header("aia"),
                        path="x.fits")
    assert err.value.reason == "empty_data"


def test_unordered_euv_clip_is_refused_by_library_cli_and_workflow(tmp_path, capsys):
    """normalize_frame and `farside-gan normalize` refuse an EUV clip that is not increasing
    (the workflow refuses it while planning: tests/workflow/test_planning_checks.py)."""
    from farside_gan.cli import main
    header = fits.Header({"TELESCOP": "SDO/AIA", "INSTRUME": "AIA_4", "WAVELNTH": 193,
                          "R_SUN": 28.125, "MASKRAD": 0.98})
    image = np.where(disk_mask(64, 28.125, 0.98), 300.0 + np.indices((64, 64))[0], 0.0)
    with pytest.raises(ValueError, match=r"euv_clip must be increasing .* \[200, 1\]"):
        normalize_frame(image.astype(np.float32), header, euv_clip=(200, 1))
    write_fits(tmp_path / "a.fits", image.astype(np.float32), header)
    with pytest.raises(SystemExit, match="--euv-clip: euv_clip must be increasing"):
        main(["normalize", str(tmp_path / "a.fits"), str(tmp_path / "n.fits"),
              "--euv-clip", "200", "1"])
    assert not (tmp_path / "n.fits").exists()
