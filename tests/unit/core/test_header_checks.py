"""The header checks (``farside_gan.core.header_checks``) at every stage boundary: a frame the
pipeline cannot trust is refused with an InputDataError naming the file and the keyword (or
dropped at the fetch check with that reason), never completed with sunpy's guesses; at fetch,
align, calibrate, normalize, stack and predict. Real headers come from sunpy's test data; bad
files from the synthetic archive (farside_gan.testing.bad_files)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest
import sunpy.data.test
from astropy.io import fits

from farside_gan.acquire.quality import check_frame
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_fits, write_fits
from farside_gan.core.geometry import disk_mask
from farside_gan.prepare.align import align_file, align_frame
from farside_gan.prepare.calibrate import (calibrate_frame, load_calibration_tables,
                                           write_demo_calibration_tables)
from farside_gan.prepare.manifest import build_manifest, load_records
from farside_gan.prepare.stack import stack_files
from farside_gan.prepare.normalize import normalize_frame

AIA_FILE = sunpy.data.test.get_test_filepath("aia_171_level1.fits")
HMI_FILE = sunpy.data.test.get_test_filepath("resampled_hmi.fits")
EUVI_HEADER = sunpy.data.test.get_test_filepath("euvi_20090615_000900_n4euA_s.header")


def real(path):
    return read_fits(path)


def euvi_frame():
    """sunpy's real STEREO-A EUVI header (roll 3.85 deg in both PC and CROTA) with an image
    whose disk is where that header says, brighter to the north-east (so a lost roll shows)."""
    header = fits.Header.fromfile(EUVI_HEADER, sep="\n", endcard=False, padding=False)
    n = header["NAXIS1"]
    y, x = np.indices((n, n), dtype=float)
    r = np.hypot(x - (header["CRPIX1"] - 1), y - (header["CRPIX2"] - 1)) * header["CDELT1"]
    data = np.where(r < header["RSUN"], 100.0 + 0.5 * (y - x), 5.0) + header["BIASMEAN"]
    return data.astype(np.float32), header


def refused(call, reason, *words):
    """Run ``call``; it must raise InputDataError with ``reason`` whose message holds ``words``."""
    with pytest.raises(InputDataError) as err:
        call()
    message = str(err.value)
    assert err.value.reason == reason, message
    for word in words:
        assert word in message, message
    return message


def without(header, *keys):
    header = header.copy()
    for key in keys:
        header.remove(key, ignore_missing=True)
    return header


def with_values(header, **values):
    header = header.copy()
    for key, value in values.items():
        header[key.replace("DATE_OBS", "DATE-OBS")] = value
    return header


# ----------------------------------------------------------------------------- geometry

def test_real_hmi_without_crota2_is_refused_not_aligned_180_degrees_wrong(tmp_path):
    data, header = real(HMI_FILE)
    assert abs(header["CROTA2"] - 180) < 1  # the raw frame is upside down
    check_frame(data, header, path=HMI_FILE)  # as delivered, it passes
    bare = without(header, "CROTA2")
    for stage in (lambda: check_frame(data, bare, path="hmi.fits"),
                  lambda: align_frame(data, bare, size=32, rsun_px=14, path="hmi.fits")):
        refused(stage, "missing_keyword", "hmi.fits", "CROTA2", "roll of 0 degrees")
    write_fits(tmp_path / "hmi.fits", data, bare)
    with pytest.raises(InputDataError, match="CROTA2"):
        align_file(tmp_path / "hmi.fits", tmp_path / "aligned.fits", size=32, rsun_px=14)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hmi.fits"]


def test_real_euvi_without_pc_or_crota_is_refused_and_either_gives_the_same_roll():
    data, header = euvi_frame()
    kwargs = dict(size=32, rsun_px=14, mask_radius=0.98, path="euvi.fts")
    refused(lambda: align_frame(data, without(header, "PC1_1", "PC1_2", "PC2_1", "PC2_2", "CROTA"),
                                **kwargs), "missing_keyword", "euvi.fts", "CROTA", "PC matrix")
    reference, _ = align_frame(data, header, **kwargs)
    by_crota, _ = align_frame(data, without(header, "PC1_1", "PC1_2", "PC2_1", "PC2_2"), **kwargs)
    by_pc, _ = align_frame(data, without(header, "CROTA"), **kwargs)
    np.testing.assert_allclose(by_crota, reference, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(by_pc, reference)
    unrolled, _ = align_frame(data, with_values(header, CROTA=0.0, PC1_1=1.0, PC1_2=0.0, PC2_1=0.0,
                                                PC2_2=1.0), **kwargs)
    assert np.abs(unrolled - reference).max() > 1.0  # the roll does move the image
    refused(lambda: align_frame(data, with_values(header, CROTA=13.8), **kwargs),
            "inconsistent_header", "CROTA = 13.8", "PC matrix")


@pytest.mark.parametrize("change, reason, words", [
    ({"CDELT1": None, "CDELT2": None}, "missing_keyword", ["CDELT1", "CDELT2"]),
    ({"CRPIX1": None, "CRPIX2": None}, "missing_keyword", ["CRPIX1", "CRPIX2"]),
    ({"DATE-OBS": None}, "missing_keyword", ["DATE-OBS"]),
    ({"CUNIT1": None}, "missing_keyword", ["CUNIT1"]),
    ({"DSUN_OBS": 0.0}, "out_of_range", ["DSUN_OBS = 0 au"]),
    ({"DSUN_OBS": 1.3e11}, "out_of_range", ["DSUN_OBS = 0.869"]),
    ({"CDELT1": 1.0, "CDELT2": 1.0}, "out_of_range", ["plate scale", "971"]),   # sunpy's default
    ({"CRPIX1": 900.0}, "out_of_range", ["outside the 128 x 128 frame"]),
    ({"CROTA2": 1e5}, "out_of_range", ["CROTA2"]),
    ({"RSUN_REF": 7e9}, "out_of_range", ["RSUN_REF"]),
    ({"DATE-OBS": "2031-01-01T00:00:00"}, "out_of_range", ["DATE-OBS"]),
    ({"DATE-OBS": "2001-01-01T00:00:00"}, "out_of_range", ["aia data period"]),
    ({"T_OBS": "2011-02-15T12:00:01.34Z"}, "inconsistent_header", ["T_OBS", "DATE-OBS"]),
    ({"CUNIT1": "m"}, "inconsistent_header", ["CUNIT1"]),
])
def test_real_aia_geometry_is_required_and_plausible_at_fetch_and_align(change, reason, words):
    data, header = real(AIA_FILE)
    bad = header.copy()
    for key, value in change.items():
        if value is None:
            del bad[key]
        else:
            bad[key] = value
    for stage in (lambda: check_frame(data, bad, "aia", 171, path="aia.fits"),
                  lambda: align_frame(data, bad, size=32, rsun_px=14, path="aia.fits")):
        refused(stage, reason, "aia.fits", *words)


def test_align_refuses_3d_data_and_impossible_sizes():
    data, header = real(AIA_FILE)
    refused(lambda: align_frame(np.stack([data, data]), header, size=32, rsun_px=14, path="c.fits"),
            "bad_shape", "c.fits", "3 dimensions")
    with pytest.raises(ValueError, match="rsun_px"):
        align_frame(data, header, size=32, rsun_px=20)


# ----------------------------------------------------------------------------- calibrate

@pytest.fixture(scope="module")
def demo_tables(tmp_path_factory):
    cal = tmp_path_factory.mktemp("cal")
    write_demo_calibration_tables(cal)
    load_calibration_tables.cache_clear()
    return cal


@pytest.mark.parametrize("change, reason, words", [
    ({"EXPTIME": 1e12}, "out_of_range", ["EXPTIME = 1e+12 s"]),
    ({"EXPTIME": 1e-30}, "out_of_range", ["EXPTIME = 1e-30 s"]),
    ({"EXPTIME": "long"}, "inconsistent_header", ["EXPTIME = 'long' is not a number"]),
    ({"EXPTIME": None}, "missing_keyword", ["EXPTIME"]),
    ({"WAVELNTH": None}, "missing_keyword", ["WAVELNTH"]),
    ({"WAVELNTH": "blue"}, "inconsistent_header", ["WAVELNTH"]),
    ({"WAVELNTH": 555}, "wrong_channel", ["WAVELNTH = 555"]),
    ({"DATE-OBS": None}, "missing_keyword", ["DATE-OBS"]),
    ({"DATE-OBS": "yesterday"}, "inconsistent_header", ["DATE-OBS"]),
    ({"T_OBS": "soon"}, "inconsistent_header", ["T_OBS"]),
])
def test_calibrate_refuses_missing_garbage_and_absurd_keywords(demo_tables, change, reason, words):
    data, header = real(AIA_FILE)
    out, _ = calibrate_frame(data, header, calibration_dir=demo_tables, path="aia.fits")
    assert np.isfinite(out).all()  # the real header as delivered calibrates
    bad = header.copy()
    for key, value in change.items():
        if value is None:
            del bad[key]
        else:
            bad[key] = value
    refused(lambda: calibrate_frame(data, bad, calibration_dir=demo_tables, path="aia.fits"),
            reason, "aia.fits", *words)


def test_euvi_exposure_is_checked_at_calibrate():
    data, header = euvi_frame()
    calibrate_frame(data, header, path="euvi.fts")
    for value in (1e12, 1e-30):
        refused(lambda: calibrate_frame(data, with_values(header, EXPTIME=value), path="euvi.fts"),
                "out_of_range", "euvi.fts", "EXPTIME")


# ----------------------------------------------------------------------------- data

def test_partly_empty_frames_are_dropped_but_a_few_zeros_pass():
    data, header = real(AIA_FILE)
    check_frame(data, header, "aia", 171)
    disk = disk_mask(128, 971.8 / 19.18)  # the disk of this frame, near its centre
    zeros = data.copy()
    zeros.flat[np.flatnonzero(disk)[::40]] = 0  # 2.5 % of the disk: quantization-like
    check_frame(zeros, header, "aia", 171)
    zeros[:40] = 0  # a lost block: a third of the frame
    refused(lambda: check_frame(zeros, header, "aia", 171, path="aia.fits"), "empty_data",
            "aia.fits", "partly empty")
    refused(lambda: check_frame(np.zeros_like(data), header, "aia", 171, path="aia.fits"),
            "empty_data", "empty frame")
    refused(lambda: check_frame(np.full_like(data, 7.0), header, "aia", 171, path="aia.fits"),
            "degenerate_data", "constant")


def test_all_zero_hmi_is_not_a_0_gauss_target():
    header = fits.Header({"TELESCOP": "SDO/HMI", "INSTRUME": "HMI_SIDE1", "CONTENT": "MAGNETOGRAM",
                          "R_SUN": 28.125, "MASKRAD": 0.98, "BUNIT": "Gauss",
                          "CRPIX1": 32.5, "CRPIX2": 32.5})
    refused(lambda: normalize_frame(np.zeros((64, 64), np.float32), header, path="m.fits"),
            "empty_data", "m.fits", "solar disk is 0")
    field = np.zeros((64, 64), np.float32)
    field[20:40, 20:40] = np.nan
    refused(lambda: normalize_frame(field, header, path="m.fits"), "mostly_nan", "NaN")


#: The keyword (or words) each bad file's drop reason names.
DROP_WORDS = {
    "missing_date_obs": "DATE-OBS", "hmi_without_crota2": "CROTA2", "missing_cdelt": "CDELT1",
    "missing_crpix": "CRPIX1", "dsun_zero": "DSUN_OBS", "exptime_huge": "EXPTIME",
    "hmi_all_zero": "empty frame", "aia_all_zero": "empty frame", "partly_empty": "partly empty",
    "corrupt_header": "EXPTIME", "euvi_without_roll": "CROTA", "exptime_tiny": "EXPTIME",
    "euvi_partly_empty": "partly empty",
}


def test_fetch_drops_each_bad_frame_with_its_reason_and_the_manifest_records_it(synthetic_sun,
                                                                                 tmp_path):
    """A local archive of the bad files: every fetch writes a 'dropped' record naming the file and
    the keyword, leaves no frame, and the AIA/HMI drops become manifest rows."""
    from farside_gan.acquire.download import fetch_observation
    from farside_gan.core.fitsio import sha256_of
    from farside_gan.synthetic.archive import write_catalog
    from farside_gan.testing.bad_files import (BAD_EUVI_FILES, BAD_FILES, bad_file_relpath,
                                               write_bad_file)

    root, rows = tmp_path / "archive", []
    defects = {**{d: BAD_FILES for d in DROP_WORDS if d in BAD_FILES},
               **{d: BAD_EUVI_FILES for d in DROP_WORDS if d in BAD_EUVI_FILES}}
    for defect, table in defects.items():
        instrument, channel, time, _ = table[defect]
        rel = bad_file_relpath(defect, defects=table)
        write_bad_file(root / rel, defect, size=64, sun=synthetic_sun, defects=table)
        rows.append({"instrument": instrument, "channel": channel, "time": time.isoformat(),
                     "path": rel.as_posix(), "size": (root / rel).stat().st_size,
                     "sha256": sha256_of(root / rel)})
    write_catalog(root, rows)
    # a card garbled in transfer breaks the file's FITS CHECKSUM: the download's verification
    # drops it before the header checks see it (tests/unit/acquire/test_download.py: the same)
    at_download = {"corrupt_header": ("corrupt_fits", "FITS checksum fails")}
    for defect, table in defects.items():
        instrument, channel, time, reason = table[defect]
        reason, words = at_download.get(defect, (reason, DROP_WORDS[defect]))
        out = tmp_path / "fetched" / defect
        record = fetch_observation(str(root), instrument, channel, time, "1m", out, retries=1,
                                   backoff=0.01)
        assert (record["status"], record["reason"]) == ("dropped", reason), (defect, record)
        assert words in record["detail"] and record["source_file"] in record["detail"]
        assert sorted(p.name for p in out.iterdir()) == ["record.json"]
        assert json.loads((out / "record.json").read_text())["reason"] == reason
    manifest = build_manifest(load_records(sorted((tmp_path / "fetched").glob("*/record.json"))))
    expected = {t.strftime("%Y-%m-%dT%H:%M:%S"): at_download.get(d, (reason,))[0]
                for d, (instrument, _, t, reason) in BAD_FILES.items() if d in defects}
    assert {r["time"]: r["reason"] for r in manifest} == expected
    assert all(r["status"] == "dropped" for r in manifest)


# ----------------------------------------------------------------------------- stacks

def normalized(path, channel, time: datetime, fill=None):
    n = 32
    h = fits.Header({"TELESCOP": "SDO/AIA", "INSTRUME": "AIA_4", "WAVELNTH": channel,
                     "DATE-OBS": time.isoformat(), "R_SUN": 14.0625, "MASKRAD": 0.98,
                     "CRPIX1": (n + 1) / 2, "CRPIX2": (n + 1) / 2,
                     "NORMMED": 300.0, "NORMTGT": 100.0, "NORMCLO": 1.0, "NORMCHI": 200.0})
    data = np.linspace(-1, 1, n * n, dtype=np.float32).reshape(n, n)
    if fill is not None:
        data[:] = fill
    return write_fits(path, data, h)


def test_stack_refuses_nan_planes_and_channels_hours_apart(tmp_path):
    t = datetime(2011, 1, 1, 0, 0, 5)
    good = [normalized(tmp_path / f"{c}.fits", c, t) for c in (304, 193, 171)]
    nan = normalized(tmp_path / "nan193.fits", 193, t, fill=np.nan)
    refused(lambda: stack_files(tmp_path / "s.fits", [good[0], nan, good[2]]), "mostly_nan",
            "nan193.fits", "NaN")
    late = normalized(tmp_path / "late171.fits", 171, t + timedelta(hours=12))
    refused(lambda: stack_files(tmp_path / "s.fits", [good[0], good[1], late]), "time_mismatch",
            "late171.fits", "12:00:00", "2:00:00")
    assert not (tmp_path / "s.fits").exists()
    hour = normalized(tmp_path / "hour171.fits", 171, t + timedelta(hours=1))
    stack_files(tmp_path / "s.fits", [good[0], good[1], hour])  # within the fetch tolerances
    refused(lambda: stack_files(tmp_path / "s2.fits", [good[0], good[1], hour],
                                max_time_spread=timedelta(minutes=30)), "time_mismatch")


# ----------------------------------------------------------------------------- predict

@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    from helpers.model import write_pair

    from farside_gan.training.data import PairedFitsDataset
    from farside_gan.training.trainer import TrainConfig, Trainer
    d = tmp_path_factory.mktemp("gen")
    stack, target, _ = write_pair(d, 0, 64)
    tiny = TrainConfig(ngf=4, ndf=4, n_downsample=2, n_residual=1, progress=False, num_threads=1)
    return Trainer(tiny, PairedFitsDataset([(stack, target)]), d / "run", device="cpu").save_generator()


def test_predict_refuses_reversed_channels_and_sizes_the_model_cannot_take(generator, tmp_path):
    from helpers.model import write_pair

    from farside_gan.products.inference import predict
    good = write_pair(tmp_path / "good", 1, 64, instrument="euvi_a")[0]
    reversed_ = write_pair(tmp_path / "rev", 2, 64, instrument="euvi_a")[0]
    with fits.open(reversed_, mode="update") as hdul:
        hdul[0].data = hdul[0].data[::-1].copy()
        hdul[0].header["CHAN1"], hdul[0].header["CHAN3"] = 171, 304
    odd = write_pair(tmp_path / "odd", 3, 42, instrument="euvi_a")[0]
    out = tmp_path / "out"
    refused(lambda: predict(generator, [good, reversed_], out, device="cpu"), "wrong_channel",
            str(reversed_), "(171, 195, 304)", "(304, 195, 171)")
    refused(lambda: predict(generator, [good, odd], out, device="cpu"), "bad_shape", str(odd),
            "42 x 42", "multiple of 4")
    assert not out.exists()  # headers first: nothing generated for the good stack either
    assert len(predict(generator, [good], out, device="cpu")) == 1
