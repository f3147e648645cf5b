"""One test per workflow rule: Snakemake runs just that rule (--allowed-rules) on small data.

The data are a chain: each stage's fixture runs one rule in a shared scratch workspace on the
outputs of the stage before it (a synthetic archive of 3 times, 128 px, aligned to 64 px with
the published disk ratio). Each test checks its rule's outputs against the library run
directly on the same inputs, and against physical expectations. The per-frame stages
(calibrate, align, normalize) cost a process start (~3 s of imports) per frame, so Snakemake
runs them on the frames their tests check and the fixture makes the other frames the next
stage needs with the library, in-process.

Times: 2011-01-31 00 and 12 UT, 2011-02-01 00 UT. The 01-31 12 UT frames fall in the
configured eclipse period and are dropped; with dataset seed 0 February is an evaluation month,
so 01-31 00 UT trains and 02-01 00 UT evaluates.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil

import numpy as np
import pytest
from astropy.io import fits

from test_workflow_helpers import run_snakemake, write_config

SIZE = 64
RSUN_PX = SIZE * 450 / 1024
TRAIN_T, ECLIPSE_T, EVAL_TS = "20110131T0000", "20110131T1200", ("20110201T0000",)
OK_TIMES = (TRAIN_T,) + EVAL_TS
FARSIDE_T = "20110131T0000"
CONFIG = {
    "start": "2011-01-31T00:00",
    "end": "2011-02-01T00:00",
    "cadence_hours": 12,
    "synthetic": {"enabled": True, "size": 128, "euvi_size": 128, "cadence": "12h", "seed": 0},
    "fetch": {"source": "local", "euvi_source": "local", "archive": "data/archive",
              "batch": "day", "eclipse_periods": ["2011-01-31T11:00/2011-01-31T13:00"]},
    "image": {"size": SIZE, "rsun_px": RSUN_PX, "mask_radius": 0.98, "fill": 0.0},
    "normalize": {"euv_median": 100.0, "euv_clip": [1.0, 200.0], "hmi_clip": 3000.0},
    "dataset": {"pair_tolerance": "6m", "seed": 0, "eval_months": 2},
    "model": {"ngf": 4, "ndf": 8, "n_downsample": 2, "n_residual": 1},
    "training": {"epochs": 2, "epoch_decay": 1, "preview_every": 0, "progress": False,
                 "device": "cpu", "gpus": 0},
    "farside": {"cadence_hours": 24,
                "spacecraft": {"euvi_a": {"start": "2011-01-31T00:00", "end": "2011-01-31T00:00"}}},
}
CHANNELS = {"aia": ("304", "193", "171"), "hmi": ("magnetogram",), "euvi_a": ("304", "195", "171")}


def frames():
    """(instrument, channel, time) of every usable frame."""
    out = [(i, c, t) for t in OK_TIMES for i in ("aia", "hmi") for c in CHANNELS[i]]
    return out + [("euvi_a", c, FARSIDE_T) for c in CHANNELS["euvi_a"]]


def raw_frame(ws, instrument, channel, time):
    return ws / f"data/raw/{instrument}/{time[:8]}/{channel}/{time}"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("rules")
    write_config(root / "config.yaml", CONFIG)
    return root


def run_rule(ws, rule, targets):
    """Snakemake may run only `rule`; everything upstream must already be there."""
    return run_snakemake(ws, "--cores", "2", "--allowed-rules", rule, "--notemp", *targets,
                         configfiles=[ws / "config.yaml"])


@pytest.fixture(scope="module")
def archive(ws):
    run_rule(ws, "synth_archive", ["data/archive"])
    return ws / "data/archive"


@pytest.fixture(scope="module")
def calibration(ws):
    run_rule(ws, "calibration_tables", ["data/calibration"])
    return ws / "data/calibration"


@pytest.fixture(scope="module")
def fetched(ws, archive, calibration):
    run_rule(ws, "fetch", ["data/raw/aia/20110131", "data/raw/aia/20110201",
                           "data/raw/hmi/20110131", "data/raw/hmi/20110201",
                           "data/raw/euvi_a/20110131"])
    return ws


# The frames each per-frame stage's test checks (run through Snakemake).
CHECKED = {
    "calibrate": [("aia", "171", TRAIN_T), ("hmi", "magnetogram", TRAIN_T), ("euvi_a", "195", FARSIDE_T)],
    "align": [("aia", "193", TRAIN_T), ("hmi", "magnetogram", TRAIN_T)],
    "normalize": [("aia", "304", TRAIN_T), ("hmi", "magnetogram", TRAIN_T)],
}


def frame_path(ws, stage, frame):
    inst, ch, t = frame
    return ws / f"data/{stage}/{inst}/{ch}/{t}.fits"


def run_stage(ws, rule, stage, make):
    """`rule` through Snakemake on the checked frames; `make(frame, out)` for the others."""
    run_rule(ws, rule, [frame_path(ws, stage, f).relative_to(ws) for f in CHECKED[rule]])
    for frame in frames():
        if frame not in CHECKED[rule]:
            make(frame, frame_path(ws, stage, frame))


@pytest.fixture(scope="module")
def calibrated(fetched, calibration):
    from farside_gan.calibrate import calibrate_file
    run_stage(fetched, "calibrate", "calibrated", lambda f, out: calibrate_file(
        raw_frame(fetched, *f) / "frame.fits", out, calibration_dir=calibration))
    # keep copies: calibrated frames are temp() files in a normal run
    keep = fetched / "kept_calibrated"
    shutil.copytree(fetched / "data/calibrated", keep, dirs_exist_ok=True)
    return keep


@pytest.fixture(scope="module")
def aligned(calibrated, ws):
    from farside_gan.align import align_file
    run_stage(ws, "align", "aligned", lambda f, out: align_file(
        frame_path(ws, "calibrated", f), out, size=SIZE, rsun_px=RSUN_PX, mask_radius=0.98, fill=0.0))
    return ws / "data/aligned"


@pytest.fixture(scope="module")
def normalized(aligned, ws):
    from farside_gan.normalize import normalize_file
    run_stage(ws, "normalize", "normalized", lambda f, out: normalize_file(
        frame_path(ws, "aligned", f), out, euv_median=100.0, euv_clip=(1.0, 200.0), hmi_clip=3000.0))
    return ws / "data/normalized"


@pytest.fixture(scope="module")
def stacked(normalized, ws):
    run_rule(ws, "stack", [f"data/stacks/aia/{t}.fits" for t in OK_TIMES]
             + [f"data/stacks/euvi_a/{FARSIDE_T}.fits"])
    return ws / "data/stacks"


@pytest.fixture(scope="module")
def manifest(stacked, ws):
    run_rule(ws, "manifest", ["data/manifest.csv"])
    return ws / "data/manifest.csv"


@pytest.fixture(scope="module")
def trained(manifest, ws):
    run_rule(ws, "train", ["results/model/generator.pt"])
    return ws / "results/model"


@pytest.fixture(scope="module")
def nearside(trained, ws):
    run_rule(ws, "predict_nearside", [f"results/nearside/{t}.fits" for t in EVAL_TS])
    return ws / "results/nearside"


@pytest.fixture(scope="module")
def farside(trained, ws):
    run_rule(ws, "predict_farside", [f"results/farside/stereo_a/{FARSIDE_T}.fits"])
    return ws / "results/farside/stereo_a"


@pytest.fixture(scope="module")
def quicklook(farside, ws):
    run_rule(ws, "quicklook", [f"results/farside/stereo_a/{FARSIDE_T}.png"])
    return ws / f"results/farside/stereo_a/{FARSIDE_T}.png"


@pytest.fixture(scope="module")
def evaluated(nearside, ws):
    run_rule(ws, "evaluate", ["results/evaluation/metrics.csv"])
    return ws / "results/evaluation"


def read_catalog(archive):
    with open(archive / "catalog.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_synth_archive_covers_config_times_and_instruments(archive):
    rows = read_catalog(archive)
    # aia x3 + hmi + euvi_a x3 channels at the 3 times from the config (the synthetic span)
    assert len(rows) == 7 * 3
    assert {(r["instrument"], r["channel"]) for r in rows} == {
        (i, c) for i in CHANNELS for c in CHANNELS[i]}
    aia171 = next(r for r in rows if r["instrument"] == "aia" and r["channel"] == "171")
    header = _first_image_header(archive / aia171["path"])
    assert header["NAXIS1"] == 128 and header["WAVELNTH"] == 171


def _first_image_header(path):
    with fits.open(path) as hdul:
        return next(h.header for h in hdul if h.data is not None)


def test_calibration_tables_written_for_offline_demo(calibration):
    from farside_gan.calibrate import load_calibration_tables
    pointing, correction = load_calibration_tables(calibration)
    assert len(pointing) > 0 and len(correction) > 0


def test_fetch_batch_records_every_frame_and_copies_archive_files(fetched, archive):
    by_key = {(r["instrument"], r["channel"], r["time"][:16]): r for r in read_catalog(archive)}
    for inst, chans in CHANNELS.items():
        times = (FARSIDE_T,) if inst == "euvi_a" else OK_TIMES + (ECLIPSE_T,)
        for t in times:
            for ch in chans:
                d = raw_frame(fetched, inst, ch, t)
                record = json.loads((d / "record.json").read_text())
                if t == ECLIPSE_T:
                    assert record["status"] == "dropped" and record["reason"] == "eclipse"
                    assert not (d / "frame.fits").exists()
                    continue
                assert record["status"] == "ok", record
                iso = f"{t[:4]}-{t[4:6]}-{t[6:8]}T{t[9:11]}:{t[11:13]}"
                row = next(v for k, v in by_key.items()
                           if k[0] == inst and k[1] == ch and abs(_minutes(k[2]) - _minutes(iso)) < 60)
                digest = hashlib.sha256((d / "frame.fits").read_bytes()).hexdigest()
                assert digest == row["sha256"]


def _minutes(iso):
    from datetime import datetime
    return datetime.fromisoformat(iso).timestamp() / 60


def test_calibrate_matches_library_on_the_same_frame(calibrated, fetched, calibration, tmp_path):
    from farside_gan.calibrate import calibrate_file
    for inst, ch, t in [("aia", "171", TRAIN_T), ("hmi", "magnetogram", TRAIN_T),
                        ("euvi_a", "195", FARSIDE_T)]:
        raw = raw_frame(fetched, inst, ch, t) / "frame.fits"
        expected = calibrate_file(raw, tmp_path / f"{inst}.fits", calibration_dir=calibration)
        got = fits.getdata(calibrated / inst / ch / f"{t}.fits")
        want = fits.getdata(expected)
        assert got.dtype.kind == "f" and got.dtype.itemsize == 4 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_align_centres_disk_at_configured_radius(aligned):
    import astropy.units as u
    import sunpy.map
    from astropy.coordinates import SkyCoord
    for inst, ch in [("aia", "193"), ("hmi", "magnetogram")]:
        m = sunpy.map.Map(aligned / inst / ch / f"{TRAIN_T}.fits")
        assert m.data.shape == (SIZE, SIZE)
        radius_px = (m.rsun_obs / m.scale[0]).to_value("pix")
        assert radius_px == pytest.approx(RSUN_PX, rel=1e-3)
        sun_centre = m.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec,
                                                   frame=m.coordinate_frame))
        assert np.allclose([float(c) for c in sun_centre], (SIZE - 1) / 2, atol=0.05)
        yy, xx = np.indices(m.data.shape)
        off_disk = np.hypot(xx - (SIZE - 1) / 2, yy - (SIZE - 1) / 2) > 0.98 * RSUN_PX + 1
        assert np.all(m.data[off_disk] == 0)


def test_normalize_puts_euv_median_at_100_and_scales_hmi(normalized, aligned):
    from farside_gan.geometry import disk_mask
    on_disk = disk_mask(SIZE, RSUN_PX, 0.98)
    euv = fits.getdata(normalized / "aia/304" / f"{TRAIN_T}.fits")
    median_100 = 2 * np.log10(100) / np.log10(200) - 1  # 100 after clip [1, 200], log, to [-1, 1]
    assert float(np.median(euv[on_disk])) == pytest.approx(median_100, abs=0.02)
    assert euv.min() >= -1 and euv.max() <= 1
    hmi = fits.getdata(normalized / "hmi/magnetogram" / f"{TRAIN_T}.fits")
    gauss = fits.getdata(aligned / "hmi/magnetogram" / f"{TRAIN_T}.fits")
    np.testing.assert_allclose(hmi, np.clip(np.nan_to_num(gauss), -3000, 3000) / 3000, atol=1e-6)


def test_stack_orders_channels_304_193_171(stacked, normalized):
    with fits.open(stacked / "aia" / f"{TRAIN_T}.fits") as hdul:
        data, header = hdul[0].data, hdul[0].header
    assert data.shape == (3, SIZE, SIZE)
    assert [header["CHAN1"], header["CHAN2"], header["CHAN3"]] == [304, 193, 171]
    for k, ch in enumerate(("304", "193", "171")):
        np.testing.assert_array_equal(data[k], fits.getdata(normalized / "aia" / ch / f"{TRAIN_T}.fits"))
    with fits.open(stacked / "euvi_a" / f"{FARSIDE_T}.fits") as hdul:
        assert hdul[0].header["CHAN2"] == 195


def test_manifest_pairs_splits_and_records_drops(manifest):
    with open(manifest, newline="") as f:
        rows = {r["time"][:16]: r for r in csv.DictReader(f)}
    status = {t: (r["status"], r["split"], r["reason"]) for t, r in rows.items()}
    assert status == {
        "2011-01-31T00:00": ("ok", "train", ""),
        "2011-01-31T12:00": ("dropped", "", "eclipse"),
        "2011-02-01T00:00": ("ok", "eval", ""),
    }
    ok = rows["2011-01-31T00:00"]
    assert ok["input"].endswith(f"data/stacks/aia/{TRAIN_T}.fits")
    assert ok["target"].endswith(f"data/normalized/hmi/magnetogram/{TRAIN_T}.fits")


def test_train_writes_generator_checkpoint_and_losses(trained):
    import torch
    checkpoint = torch.load(trained / "checkpoints/latest.pt", map_location="cpu", weights_only=False)
    assert checkpoint["epoch"] in (1, 2)  # 0- or 1-based count of the 2 epochs
    assert checkpoint["config"]["ngf"] == 4 and checkpoint["config"]["n_residual"] == 1
    with open(trained / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(np.isfinite(float(v)) for r in rows for k, v in r.items()
                        if k.startswith("loss") and v != "")


def test_predict_nearside_matches_library_and_is_gauss(nearside, trained, stacked, tmp_path):
    from farside_gan.inference import predict
    for t in EVAL_TS:
        with fits.open(nearside / f"{t}.fits") as hdul:
            got, header = hdul[0].data, hdul[0].header
        assert header["BUNIT"] == "Gauss" and got.shape == (SIZE, SIZE)
        [expected] = predict(trained / "generator.pt", [stacked / "aia" / f"{t}.fits"], tmp_path / t,
                             device="cpu")
        np.testing.assert_allclose(got, fits.getdata(expected), atol=1e-3)
        assert np.abs(got).max() <= 3000.0 + 1e-3


def test_predict_farside_keeps_stereo_observer(farside, stacked):
    import sunpy.map
    m = sunpy.map.Map(farside / f"{FARSIDE_T}.fits")
    stack_header = fits.getheader(stacked / "euvi_a" / f"{FARSIDE_T}.fits")
    assert m.unit.to_string() in ("G", "Gauss")
    assert m.observer_coordinate.lon.to_value("deg") == pytest.approx(stack_header["HGLN_OBS"], abs=1e-6)
    assert m.observer_coordinate.radius.to_value("m") == pytest.approx(stack_header["DSUN_OBS"], rel=1e-9)
    # STEREO-A was ~86 degrees ahead of Earth in early 2011
    assert 80 < m.observer_coordinate.lon.to_value("deg") < 95


def test_evaluate_scores_every_eval_time(evaluated):
    with open(evaluated / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(EVAL_TS)
    for r in rows:
        assert -1 <= float(r["cc"]) <= 1
        assert float(r["rmse"]) > 0
    for png in ("scatter.png", "flux.png"):
        assert (evaluated / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((evaluated / "maps").glob("*.png"))) == len(EVAL_TS)


def test_quicklook_plots_the_farside_map(quicklook):
    import matplotlib.image
    image = matplotlib.image.imread(quicklook)
    assert image.shape[:2] == (400, 416)  # 5.2 x 5.0 inches at 80 dpi
    # the disk is drawn: grey levels vary in the middle of the figure
    centre = image[150:250, 160:260, :3].mean(axis=2)
    assert centre.std() > 0.01
