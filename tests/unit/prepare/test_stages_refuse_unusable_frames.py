"""Run on their own (as a per-frame rerun or any user of the command line does), calibrate,
align, normalize and stack refuse a frame they can never make anything of, with one line naming
the file and what is wrong, and write nothing: an empty (all NaN, 0 or inf) raw or calibrated
frame, a calibrated frame whose disk is half outside its data, an aligned frame whose data are
not of the size its header was written for, and an all-zero normalized plane."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from farside_gan.cli import main
from farside_gan.synthetic.archive import read_catalog

ALIGN = ["--size", "32", "--rsun-px", "14.0625"]


@pytest.fixture(scope="module")
def frames(tmp_path_factory, synthetic_archive):
    """AIA 304/193/171 of 2011-01-01T00 raw, calibrated, aligned and normalized by the commands,
    and the raw EUVI-A 195 frame of that time."""
    from farside_gan.prepare.calibrate import load_calibration_tables
    d = tmp_path_factory.mktemp("frames")
    assert main(["calibration-tables", str(d / "cal"), "--offline-demo"]) == 0
    load_calibration_tables.cache_clear()
    rows = [r for r in read_catalog(synthetic_archive) if r["time"].startswith("2011-01-01T00")]
    f = {"cal": d / "cal"}
    f["raw_euvi"] = synthetic_archive / next(r["path"] for r in rows if r["instrument"] == "euvi_a"
                                             and r["channel"] == "195")
    for c in ("304", "193", "171"):
        f[f"raw{c}"] = synthetic_archive / next(r["path"] for r in rows
                                                if r["instrument"] == "aia" and r["channel"] == c)
        for stage, command, src, extra in (
                ("calibrated", "calibrate", "raw", ["--calibration-dir", str(d / "cal")]),
                ("aligned", "align", "calibrated", ALIGN),
                ("normalized", "normalize", "aligned", [])):
            f[f"{stage}{c}"] = d / f"{stage}{c}.fits"
            assert main([command, str(f[f"{src}{c}"]), str(f[f"{stage}{c}"]), *extra]) == 0
    return f


def rewritten(src: Path, dest: Path, data_of) -> Path:
    """``src`` with its data replaced by ``data_of(data)``, its header otherwise as it was (the
    integer encoding's keywords dropped with integer data, checksums made anew)."""
    with fits.open(src) as hdul:
        header = hdul[0].header.copy()
        data = data_of(hdul[0].data.astype(np.float32))
    for key in ("BLANK", "BZERO", "BSCALE", "CHECKSUM", "DATASUM"):
        header.remove(key, ignore_missing=True)
    fits.PrimaryHDU(data, header).writeto(dest, checksum=True)
    return dest


def refused(argv, bad: Path, words: str, out: Path, capsys):
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"farside-gan {argv[0]}: error: {bad}: "), err
    assert words in err, err
    assert not out.exists() and not [p for p in out.parent.glob(f".{out.name}*")], \
        list(out.parent.iterdir())


EMPTY = {"nan": lambda d: np.full_like(d, np.nan), "zero": np.zeros_like,
         "inf": lambda d: np.full_like(d, np.inf)}


@pytest.mark.parametrize("raw", ["raw171", "raw_euvi"])
@pytest.mark.parametrize("empty", sorted(EMPTY))
def test_calibrate_refuses_an_empty_frame(frames, raw, empty, tmp_path, capsys):
    bad = rewritten(frames[raw], tmp_path / f"{empty}.fits", EMPTY[empty])
    out = tmp_path / "out.fits"
    words = "every finite pixel is 0" if empty == "zero" else "every pixel is NaN or inf"
    refused(["calibrate", str(bad), str(out), "--calibration-dir", str(frames["cal"])], bad,
            f"{words}: an empty frame", out, capsys)


@pytest.mark.parametrize("empty", ["nan", "zero"])
def test_align_refuses_an_empty_frame(frames, empty, tmp_path, capsys):
    bad = rewritten(frames["calibrated171"], tmp_path / f"{empty}.fits", EMPTY[empty])
    out = tmp_path / "out.fits"
    refused(["align", str(bad), str(out), *ALIGN], bad,
            "every pixel on the solar disk is 0 or NaN: an empty frame", out, capsys)


def test_align_refuses_a_frame_whose_disk_is_half_outside_the_data(frames, tmp_path, capsys):
    """Columns from just past the disk's centre on are gone: the header's Sun centre is still in
    the frame, half its disk is not (align would fill that half with the fill value)."""
    keep = int(round(fits.getheader(frames["calibrated171"])["CRPIX1"])) + 2
    bad = rewritten(frames["calibrated171"], tmp_path / "cropped.fits", lambda d: d[:, :keep])
    out = tmp_path / "out.fits"
    refused(["align", str(bad), str(out), *ALIGN], bad,
            "of the solar disk lies beyond the edges", out, capsys)


@pytest.mark.parametrize("resize", ["upsampled", "cropped"])
def test_normalize_refuses_data_of_another_size_than_its_header(frames, resize, tmp_path,
                                                                capsys):
    """The aligned frame's data replaced by data of another size (the header, CRPIX = 16.5
    and R_SUN, still describes the 32 px frame)."""
    change = {"upsampled": lambda d: np.kron(d, np.ones((2, 2), np.float32)),
              "cropped": lambda d: d[4:28, 4:28]}[resize]
    bad = rewritten(frames["aligned171"], tmp_path / f"{resize}.fits", change)
    out = tmp_path / "out.fits"
    refused(["normalize", str(bad), str(out)], bad,
            "the data's size disagrees with its header", out, capsys)


def test_stack_refuses_an_all_zero_plane(frames, tmp_path, capsys):
    """normalize never writes it: off the disk its planes are -1."""
    assert fits.getdata(frames["normalized193"])[0, 0] == -1.0
    bad = rewritten(frames["normalized193"], tmp_path / "zero193.fits", np.zeros_like)
    out = tmp_path / "stack.fits"
    refused(["stack", str(out), str(frames["normalized304"]), str(bad),
             str(frames["normalized171"])], bad, "every pixel on the solar disk is 0: a constant "
            "plane", out, capsys)
