"""dataset: 3-channel stacks with channel order in the header, AIA-HMI pairing within tolerance,
manifest rows with every drop and its reason, seeded per-year month split."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_fits, set_mjd_keywords, write_fits
from farside_gan.prepare.manifest import (MANIFEST_COLUMNS, build_manifest, read_manifest,
                                          split_months, write_manifest)
from farside_gan.prepare.stack import stack_files

N = 16


def normalized(path, instrument, channel, t: datetime, value=0.0, **conventions):
    h = fits.Header()
    h.update(CTYPE1="HPLN-TAN", CTYPE2="HPLT-TAN", CUNIT1="arcsec", CUNIT2="arcsec", CRPIX1=8.5,
             CRPIX2=8.5, CRVAL1=0.0, CRVAL2=0.0, CDELT1=137.0, CDELT2=137.0, DSUN_OBS=1.47e11,
             HGLN_OBS=0.0, HGLT_OBS=-3.0, R_SUN=7.03, MASKRAD=0.98, BUNIT="")
    if instrument == "aia":
        h.update(TELESCOP="SDO/AIA", INSTRUME="AIA_4", WAVELNTH=channel, NORMMED=321.0 + channel,
                 NORMTGT=100.0, NORMCLO=1.0, NORMCHI=200.0,
                 T_OBS=(t + timedelta(seconds=1)).isoformat() + "Z")
    else:
        h.update(TELESCOP="SDO/HMI", INSTRUME="HMI_SIDE1", CONTENT="MAGNETOGRAM", NORMCLIP=3000.0)
    h["DATE-OBS"] = t.isoformat()
    h.update(conventions)
    set_mjd_keywords(h)  # as align writes it
    # a plane that varies over the disk (a constant one is none of normalize's), value at (0, 0)
    write_fits(path, value + np.indices((N, N), np.float32)[0] / (10 * N), h)
    return path


def test_stack_orders_channels_and_keeps_celestial_wcs(tmp_path):
    t = datetime(2011, 1, 1, 0, 0, 8)
    paths = [normalized(tmp_path / f"{c}.fits", "aia", c, t + timedelta(seconds=i), value=i / 10)
             for i, c in enumerate((304, 193, 171))]
    stack_files(tmp_path / "stack.fits", paths)
    cube, h = read_fits(tmp_path / "stack.fits")
    assert cube.shape == (3, N, N) and np.allclose(cube[:, 0, 0], [0.0, 0.1, 0.2])
    assert (h["CHAN1"], h["CHAN2"], h["CHAN3"]) == (304, 193, 171)
    assert h["CTYPE3"] == "CHANNEL" and h["NAXIS"] == 3
    assert h["FILE2"] == "193.fits" and h["NORMMED3"] == 492.0
    assert h["TOBS2"].startswith("2011-01-01T00:00:09")
    celestial = WCS(h).celestial
    assert celestial.wcs.ctype[0] == "HPLN-TAN" and celestial.wcs.crpix[0] == 8.5


def test_stack_rejects_wrong_order_and_mismatched_frames(tmp_path):
    t = datetime(2011, 1, 1)
    p304, p193, p171 = (normalized(tmp_path / f"{c}.fits", "aia", c, t) for c in (304, 193, 171))
    with pytest.raises(InputDataError, match="171.fits: is channel 171, position 2 of the stack must be 193") as err:
        stack_files(tmp_path / "s.fits", [p304, p171, p193])
    assert err.value.reason == "wrong_channel"
    hmi = normalized(tmp_path / "hmi.fits", "hmi", "magnetogram", t)
    with pytest.raises(InputDataError, match="not an EUV frame"):
        stack_files(tmp_path / "s.fits", [hmi, p193, p171])
    assert not (tmp_path / "s.fits").exists()


@pytest.mark.parametrize("keyword, value, words", [
    ("MASKRAD", 0.95, "mask_radius (MASKRAD) 0.95"),
    ("R_SUN", 7.5, "rsun_px (R_SUN) 7.5"),
    ("NORMCHI", 150.0, "euv_clip (NORMCLO/NORMCHI) (1, 150)"),
    ("NORMTGT", 50.0, "euv_median (NORMTGT) 50"),
])
def test_stack_refuses_channels_of_different_conventions_naming_the_file(tmp_path, keyword,
                                                                          value, words):
    """The three channels of a stack were aligned and normalized alike, or there is no stack."""
    t = datetime(2011, 1, 1)
    paths = [normalized(tmp_path / f"{c}.fits", "aia", c, t, **({keyword: value} if c == 171 else {}))
             for c in (304, 193, 171)]
    with pytest.raises(InputDataError, match=f"171.fits: frame conventions differ: .*{re.escape(words)}") as err:
        stack_files(tmp_path / "s.fits", paths)
    assert err.value.reason == "convention_mismatch"
    assert not (tmp_path / "s.fits").exists()


def test_split_months_seeded_per_year():
    a = split_months([2011, 2012, 2013], seed=0, eval_months=2)
    assert a == split_months([2013, 2011, 2012, 2011], seed=0, eval_months=2)
    assert split_months([2012], seed=0) == {2012: a[2012]}  # years independent of each other
    assert all(len(set(m)) == 2 and all(1 <= x <= 12 for x in m) for m in a.values())
    others = [split_months([2011, 2012, 2013], seed=s) for s in range(1, 6)]
    assert any(o != a for o in others)
    assert split_months([2011], eval_months=3)[2011] != () and len(split_months([2011], eval_months=3)[2011]) == 3


def aia_record(t, status="ok", reason="", channel=304, obs=None):
    return {"instrument": "aia", "channel": str(channel), "requested_time": t.isoformat(),
            "obs_time": (obs or t).isoformat(), "status": status, "reason": reason,
            "detail": f"file.fits: {reason}" if reason else ""}


def test_manifest_pairs_splits_and_records_drops(tmp_path):
    grid = [datetime(2011, m, 1) for m in range(1, 13)] + [datetime(2012, 1, 1, 12)]
    offset = timedelta(seconds=8)  # AIA DATE-OBS a few seconds after the grid time
    stacks, targets, records = [], [], []
    for i, t in enumerate(grid):
        if i in (3, 4):  # 3: an AIA channel flagged; 4: HMI mostly NaN
            continue
        stacks.append(normalized(tmp_path / f"s{i}.fits", "aia", 304, t + offset))
        records += [aia_record(t, channel=c, obs=t + offset) for c in (304, 193, 171)]
        shift = timedelta(minutes=10) if i == 5 else timedelta(seconds=-30)  # 5: HMI too far
        targets.append(normalized(tmp_path / f"t{i}.fits", "hmi", "magnetogram", t + shift))
    records.append(aia_record(grid[3], "dropped", "quality_flag", channel=193))
    records.append({"instrument": "hmi", "channel": "magnetogram", "requested_time": grid[4].isoformat(),
                    "status": "dropped", "reason": "mostly_nan", "detail": "m.fits: 100% NaN"})
    records.append(aia_record(grid[4], channel=304))
    rows = build_manifest(records, stacks, targets, pair_tolerance="6m", seed=3, eval_months=2)
    assert [r["time"] for r in rows] == [t.strftime("%Y-%m-%dT%H:%M:%S") for t in grid]
    by_time = {r["time"]: r for r in rows}
    dropped = {r["time"]: r["reason"] for r in rows if r["status"] == "dropped"}
    assert dropped == {"2011-04-01T00:00:00": "quality_flag", "2011-05-01T00:00:00": "mostly_nan",
                       "2011-06-01T00:00:00": "no_partner"}
    assert "aia 193: file.fits: quality_flag" in by_time["2011-04-01T00:00:00"]["detail"]
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 10 and all(r["input"] and r["target"] for r in ok)
    assert by_time["2011-01-01T00:00:00"]["target"].endswith("t0.fits")
    eval_months = split_months([2011, 2012], seed=3)
    for r in ok:
        t = datetime.fromisoformat(r["time"])
        assert r["split"] == ("eval" if t.month in eval_months[t.year] else "train")
    assert {r["split"] for r in rows if r["status"] == "dropped"} == {""}

    write_manifest(tmp_path / "manifest.csv", rows)
    assert open(tmp_path / "manifest.csv").readline().strip() == ",".join(MANIFEST_COLUMNS)
    train = read_manifest(tmp_path / "manifest.csv", split="train")
    evaluation = read_manifest(tmp_path / "manifest.csv", split="eval")
    assert len(train) + len(evaluation) == 10
    assert not {r["time"] for r in train} & {r["time"] for r in evaluation}
    assert len(read_manifest(tmp_path / "manifest.csv", status=None)) == len(grid)


def test_cli_stack_and_manifest_with_list_file(tmp_path):
    from farside_gan.cli import main

    t = datetime(2013, 7, 1, 12)
    paths = [str(normalized(tmp_path / f"{c}.fits", "aia", c, t)) for c in (304, 193, 171)]
    assert main(["stack", str(tmp_path / "stack.fits"), *paths]) == 0
    target = normalized(tmp_path / "hmi.fits", "hmi", "magnetogram", t + timedelta(minutes=2))
    rec = tmp_path / "rec.json"
    rec.write_text(json.dumps(aia_record(t)))
    (tmp_path / "stacks.txt").write_text(str(tmp_path / "stack.fits") + "\n")
    assert main(["manifest", "--out", str(tmp_path / "m.csv"), "--records", str(rec),
                 "--stacks", f"@{tmp_path / 'stacks.txt'}", "--targets", str(target),
                 "--pair-tolerance", "6m", "--seed", "0", "--eval-months", "2"]) == 0
    rows = read_manifest(tmp_path / "m.csv")
    assert len(rows) == 1 and rows[0]["target"] == str(target) and rows[0]["split"] in ("train", "eval")


def test_cli_chain_from_synthetic_archive_to_manifest(synthetic_archive, tmp_path):
    """fetch -> calibrate -> align -> normalize -> stack -> manifest through the CLI, as the
    workflow runs it, for one time; the result is a paired, split, [-1, 1] sample."""
    from farside_gan.cli import main

    assert main(["calibration-tables", str(tmp_path / "cal"), "--offline-demo"]) == 0
    t = "2011-01-01T12:00:00"
    normalized_paths = {}
    for instrument, channel in (("aia", 304), ("aia", 193), ("aia", 171), ("hmi", "magnetogram")):
        d = tmp_path / f"{instrument}_{channel}"
        assert main(["fetch", "--source", str(synthetic_archive), "--instrument", instrument,
                     "--channel", str(channel), "--time", t, "--tolerance", "1h", "--out-dir", str(d)]) == 0
        assert main(["calibrate", str(d / "frame.fits"), str(d / "cal.fits"),
                     "--calibration-dir", str(tmp_path / "cal")]) == 0
        assert main(["align", str(d / "cal.fits"), str(d / "aligned.fits"), "--size", "64",
                     "--rsun-px", str(450 / 16), "--mask-radius", "0.98"]) == 0
        assert main(["normalize", str(d / "aligned.fits"), str(d / "norm.fits")]) == 0
        normalized_paths[channel] = d / "norm.fits"
    stack = tmp_path / "stack.fits"
    assert main(["stack", str(stack), *(str(normalized_paths[c]) for c in (304, 193, 171))]) == 0
    records = [str(p) for p in tmp_path.glob("*/record.json")]
    assert main(["manifest", "--out", str(tmp_path / "m.csv"), "--records", *records,
                 "--stacks", str(stack), "--targets", str(normalized_paths["magnetogram"])]) == 0
    rows = read_manifest(tmp_path / "m.csv", status=None)
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["time"] == t
    cube, h = read_fits(stack)
    target, ht = read_fits(normalized_paths["magnetogram"])
    assert cube.shape == (3, 64, 64) and target.shape == (64, 64)
    assert -1 <= cube.min() and cube.max() <= 1 and -1 <= target.min() and target.max() <= 1
    assert abs(target).max() > 0.01  # a real field, not a blank
    assert ht["NORMCLIP"] == 3000.0 and h["CHAN2"] == 193
