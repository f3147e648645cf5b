"""One test per workflow rule: Snakemake runs just that rule (--allowed-rules) on small data.

The data are a chain: each stage's fixture runs one rule in a shared scratch workspace on the
outputs of the stage before it (a synthetic archive of 3 times, 128 px, prepared at 64 px). Each
test checks its rule's outputs against the library run directly on the same inputs, and against
physical expectations.

The frame conventions are not the defaults (a 26-px disk radius, a mask at 0.95 Rsun, HMI
clipped at 2000 G), so a stage that used a default instead of what the data says would show:
farside maps are the generator's output x 2000 G, masked at 0.95 Rsun, and evaluation scores
that disk.

Times: 2011-01-31 00 and 12 UT, 2011-02-01 00 UT, fetched in day batches. The 01-31 12 UT
frames fall in the configured eclipse period and are dropped; with dataset seed 0 February is
an evaluation month, so 01-31 00 UT trains and 02-01 00 UT evaluates.
"""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest
from astropy.io import fits
from helpers.workflow import run_snakemake, write_config

from farside_gan.core.geometry import disk_mask

SIZE = 64
RSUN_PX, MASK_RADIUS, HMI_CLIP = 26.0, 0.95, 2000.0  # not the defaults (28.125, 0.98, 3000)
TRAIN_T, ECLIPSE_T, EVAL_T = "20110131T0000", "20110131T1200", "20110201T0000"
FARSIDE_T = "20110131T0000"
CONFIG = {
    "start": "2011-01-31T00:00",
    "end": "2011-02-01T00:00",
    "cadence_hours": 12,
    "synthetic": {"enabled": True, "size": 128, "euvi_size": 128, "seed": 0},
    "fetch": {"source": "local", "euvi_source": "local", "archive": "data/archive",
              "batch": "day", "eclipse_periods": ["2011-01-31T11:00/2011-01-31T13:00"]},
    "image": {"size": SIZE, "rsun_px": RSUN_PX, "mask_radius": MASK_RADIUS, "fill": 0.0},
    "normalize": {"euv_median": 100.0, "euv_clip": [1.0, 200.0], "hmi_clip": HMI_CLIP},
    "dataset": {"pair_tolerance": "6m", "seed": 0, "eval_months": 2},
    "model": {"ngf": 4, "ndf": 8, "n_downsample": 2, "n_residual": 1},
    "training": {"epochs": 2, "epoch_decay": 1, "preview_every": 0, "progress": False,
                 "device": "cpu", "gpus": 0},
    "farside": {"cadence_hours": 24,
                "spacecraft": {"euvi_a": {"start": "2011-01-31T00:00", "end": "2011-01-31T00:00"}}},
}
CHANNELS = {"aia": ("304", "193", "171"), "hmi": ("magnetogram",), "euvi_a": ("304", "195", "171")}
PERIODS = {"aia": ("20110131", "20110201"), "hmi": ("20110131", "20110201"), "euvi_a": ("20110131",)}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("rules")
    write_config(root / "config.yaml", CONFIG)
    return root


def run_rule(ws, rule, targets):
    """Snakemake may run only `rule`; everything upstream must already be there."""
    # targets first: --allowed-rules and --configfile take every word after them
    return run_snakemake(ws, *targets, "--cores", "2", "--allowed-rules", rule,
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
def fetched(ws, archive):
    run_rule(ws, "fetch", [f"data/raw/{i}/{p}/records.json" for i in PERIODS for p in PERIODS[i]])
    return ws / "data/raw"


@pytest.fixture(scope="module")
def prepared(ws, fetched, calibration):
    run_rule(ws, "prepare", [f"data/prepared/{i}/{p}" for i in PERIODS for p in PERIODS[i]])
    return ws / "data/prepared"


@pytest.fixture(scope="module")
def manifest(prepared, ws):
    run_rule(ws, "manifest", ["data/manifest.csv"])
    return ws / "data/manifest.csv"


@pytest.fixture(scope="module")
def trained(manifest, ws):
    run_rule(ws, "train", ["results/model/generator.pt"])
    return ws / "results/model"


@pytest.fixture(scope="module")
def nearside(trained, ws):
    run_rule(ws, "predict_nearside", ["results/nearside/20110201"])
    return ws / "results/nearside/20110201"


@pytest.fixture(scope="module")
def farside(trained, ws):
    run_rule(ws, "predict_farside", ["results/farside/stereo_a/20110131"])
    return ws / "results/farside/stereo_a/20110131"


@pytest.fixture(scope="module")
def truth(prepared, ws):
    run_rule(ws, "truth", ["results/truth/sdo/20110201", "results/truth/stereo_a/20110131"])
    return ws / "results/truth"


@pytest.fixture(scope="module")
def quicklook(farside, ws):
    run_rule(ws, "quicklook", ["results/quicklook/stereo_a/20110131"])
    return ws / "results/quicklook/stereo_a/20110131"


@pytest.fixture(scope="module")
def synchronic(farside, prepared, ws):
    run_rule(ws, "synchronic", ["results/synchronic/20110131", "results/quicklook/synchronic/20110131",
                                "results/quicklook/uncertainty/20110131"])
    return ws / "results/synchronic/20110131"


@pytest.fixture(scope="module")
def evaluated(nearside, farside, truth, ws):
    run_rule(ws, "evaluate", ["results/evaluation/metrics.csv"])
    return ws / "results/evaluation"


def read_catalog(archive):
    with open(archive / "catalog.csv", newline="") as f:
        return list(csv.DictReader(f))


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_synth_archive_covers_config_times_and_instruments(archive):
    rows = read_catalog(archive)
    # what the workflow fetches: aia x3 + hmi at the 3 training times, euvi_a x3 at the farside time
    assert len(rows) == 4 * 3 + 3
    assert {r["time"][:10] for r in rows if r["instrument"] == "euvi_a"} == {"2011-01-31"}
    assert {(r["instrument"], r["channel"]) for r in rows} == {
        (i, c) for i in CHANNELS for c in CHANNELS[i]}
    aia171 = next(r for r in rows if r["instrument"] == "aia" and r["channel"] == "171")
    with fits.open(archive / aia171["path"]) as hdul:
        header = next(h.header for h in hdul if h.data is not None)
    assert header["NAXIS1"] == 128 and header["WAVELNTH"] == 171
    # the Sun the archive shows, for the truth rule
    assert json.loads((archive / "synthetic_sun.json").read_text())["seed"] == 0


def test_calibration_tables_written_for_offline_demo(calibration):
    from farside_gan.prepare.calibrate import load_calibration_tables
    pointing, correction = load_calibration_tables(calibration)
    assert len(pointing) > 0 and len(correction) > 0


def test_fetch_indexes_every_frame_of_its_period(fetched, archive):
    by_key = {(r["instrument"], r["channel"]): [] for r in read_catalog(archive)}
    for r in read_catalog(archive):
        by_key[(r["instrument"], r["channel"])].append(r)
    for inst, periods in PERIODS.items():
        for period in periods:
            index = json.loads((fetched / inst / period / "records.json").read_text())
            times = {r["requested_time"][:16] for r in index["records"]}
            assert len(index["records"]) == len(times) * len(CHANNELS[inst])
            for record in index["records"]:
                t = record["requested_time"][:16]
                if t == "2011-01-31T12:00":
                    assert record["status"] == "dropped" and record["reason"] == "eclipse"
                    assert not (fetched / inst / period / record["dir"] / "frame.fits").exists()
                    continue
                assert record["status"] == "ok", record
                frame = fetched / inst / period / record["dir"] / record["frame"]
                digest = hashlib.sha256(frame.read_bytes()).hexdigest()
                assert digest in {r["sha256"] for r in by_key[(inst, record["channel"])]}


def test_prepare_matches_the_library_chain_and_records_drops(prepared, fetched, calibration):
    from farside_gan.core.fitsio import read_fits
    from farside_gan.prepare.align import align_frame
    from farside_gan.prepare.calibrate import calibrate_frame
    from farside_gan.prepare.stack import stack_frames
    from farside_gan.prepare.normalize import normalize_frame
    records = json.loads((prepared / "aia/20110131/records.json").read_text())
    status = {e["time"]: (e["status"], e["stage"], e["reason"]) for e in records["times"]}
    assert status == {TRAIN_T: ("ok", "", ""), ECLIPSE_T: ("dropped", "fetch", "eclipse")}
    assert records["settings"]["size"] == SIZE
    frames = []
    for ch in CHANNELS["aia"]:
        raw = fetched / f"aia/20110131/{ch}/{TRAIN_T}/frame.fits"
        data, header = calibrate_frame(*read_fits(raw), calibration_dir=calibration, path=raw)
        data, header = align_frame(data, header, SIZE, RSUN_PX, MASK_RADIUS, 0.0, path=raw)
        np.testing.assert_array_equal(
            fits.getdata(prepared / f"aia/20110131/aligned/{ch}/{TRAIN_T}.fits"), data)
        frames.append(normalize_frame(data, header, path=raw))
    cube, _ = stack_frames(frames)
    with fits.open(prepared / f"aia/20110131/stacks/{TRAIN_T}.fits") as hdul:
        np.testing.assert_array_equal(hdul[0].data, cube)
        assert [hdul[0].header[f"CHAN{i}"] for i in (1, 2, 3)] == [304, 193, 171]
    with fits.open(prepared / f"euvi_a/20110131/stacks/{FARSIDE_T}.fits") as hdul:
        assert hdul[0].data.shape == (3, SIZE, SIZE) and hdul[0].header["CHAN2"] == 195
    # nothing of the dropped time was written
    assert not list(prepared.rglob(f"{ECLIPSE_T}.fits"))


def test_prepare_centres_the_disk_and_normalizes(prepared):
    import astropy.units as u
    import sunpy.map
    from astropy.coordinates import SkyCoord
    for path in (prepared / f"aia/20110131/aligned/193/{TRAIN_T}.fits",
                 prepared / f"hmi/20110131/aligned/magnetogram/{TRAIN_T}.fits"):
        m = sunpy.map.Map(path)
        assert m.data.shape == (SIZE, SIZE)
        assert (m.rsun_obs / m.scale[0]).to_value("pix") == pytest.approx(RSUN_PX, rel=1e-3)
        centre = m.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=m.coordinate_frame))
        assert np.allclose([float(c) for c in centre], (SIZE - 1) / 2, atol=0.05)
        yy, xx = np.indices(m.data.shape)
        assert np.all(m.data[np.hypot(xx - (SIZE - 1) / 2, yy - (SIZE - 1) / 2) > MASK_RADIUS * RSUN_PX] == 0)
        assert (m.meta["r_sun"], m.meta["maskrad"]) == (RSUN_PX, MASK_RADIUS)
    on_disk = disk_mask(SIZE, RSUN_PX, MASK_RADIUS)
    euv = fits.getdata(prepared / f"aia/20110131/stacks/{TRAIN_T}.fits")[0]
    median_100 = 2 * np.log10(100) / np.log10(200) - 1  # 100 after clip [1, 200], log, to [-1, 1]
    assert float(np.median(euv[on_disk])) == pytest.approx(median_100, abs=0.02)
    target, header = fits.getdata(prepared / f"hmi/20110131/targets/{TRAIN_T}.fits", header=True)
    gauss = fits.getdata(prepared / f"hmi/20110131/aligned/magnetogram/{TRAIN_T}.fits")
    assert header["NORMCLIP"] == HMI_CLIP
    np.testing.assert_allclose(target, np.clip(np.nan_to_num(gauss), -HMI_CLIP, HMI_CLIP) / HMI_CLIP,
                               atol=1e-6)


def test_manifest_pairs_splits_and_records_drops(manifest):
    rows = {r["time"][:16]: r for r in _rows(manifest)}
    status = {t: (r["status"], r["split"], r["reason"]) for t, r in rows.items()}
    assert status == {
        "2011-01-31T00:00": ("ok", "train", ""),
        "2011-01-31T12:00": ("dropped", "", "eclipse"),
        "2011-02-01T00:00": ("ok", "eval", ""),
    }
    ok = rows["2011-01-31T00:00"]
    assert ok["input"].endswith(f"data/prepared/aia/20110131/stacks/{TRAIN_T}.fits")
    assert ok["target"].endswith(f"data/prepared/hmi/20110131/targets/{TRAIN_T}.fits")


def test_train_writes_generator_checkpoint_and_losses(trained):
    import torch
    checkpoint = torch.load(trained / "checkpoints/latest.pt", map_location="cpu", weights_only=False)
    assert checkpoint["epoch"] in (1, 2)  # 0- or 1-based count of the 2 epochs
    assert checkpoint["config"]["ngf"] == 4 and checkpoint["config"]["n_residual"] == 1
    # the conventions of its data, read from the files' headers
    assert checkpoint["conventions"] == {
        "size": SIZE, "rsun_px": RSUN_PX, "mask_radius": MASK_RADIUS, "euv_median": 100.0,
        "euv_clip": [1.0, 200.0], "hmi_clip": HMI_CLIP, "channels": [304, 193, 171]}
    rows = _rows(trained / "losses.csv")
    assert rows and all(np.isfinite(float(v)) for r in rows for k, v in r.items()
                        if k.startswith("loss") and v != "")


def test_predict_nearside_matches_library_and_is_gauss(nearside, trained, prepared, tmp_path):
    from farside_gan.products.inference import predict
    with fits.open(nearside / f"{EVAL_T}.fits") as hdul:
        got, header = hdul[0].data, hdul[0].header
    assert header["BUNIT"] == "Gauss" and got.shape == (SIZE, SIZE)
    [expected] = predict(trained / "generator.pt", [prepared / f"aia/20110201/stacks/{EVAL_T}.fits"],
                         tmp_path, device="cpu")
    np.testing.assert_allclose(got, fits.getdata(expected), atol=1e-3)
    disk = disk_mask(SIZE, RSUN_PX, MASK_RADIUS)
    assert np.abs(got[disk]).max() <= HMI_CLIP + 1e-3 and np.all(np.isnan(got[~disk]))


def test_farside_maps_are_in_the_gauss_of_the_training_targets(farside, trained, prepared):
    """The generator's output x normalize.hmi_clip (2000 G here, in the targets' NORMCLIP),
    NaN beyond image.mask_radius (0.95 here)."""
    import torch

    from farside_gan.model.checkpoint import load_generator
    G, _, _ = load_generator(trained / "generator.pt")
    stack = fits.getdata(prepared / f"euvi_a/20110131/stacks/{FARSIDE_T}.fits").astype(np.float32)
    with torch.no_grad():
        raw = G(torch.from_numpy(stack)[None])[0, 0].clamp(-1, 1).numpy()
    got, header = fits.getdata(farside / f"{FARSIDE_T}.fits", header=True)
    disk = disk_mask(SIZE, RSUN_PX, MASK_RADIUS)
    np.testing.assert_allclose(got[disk], raw[disk] * HMI_CLIP, rtol=1e-5, atol=1e-3)
    assert np.all(np.isnan(got[~disk]))
    assert (header["HMICLIP"], header["MASKRAD"], header["R_SUN"]) == (HMI_CLIP, MASK_RADIUS, RSUN_PX)


def test_predict_farside_keeps_stereo_observer(farside, prepared):
    import sunpy.map
    m = sunpy.map.Map(farside / f"{FARSIDE_T}.fits")
    stack_header = fits.getheader(prepared / f"euvi_a/20110131/stacks/{FARSIDE_T}.fits")
    assert m.unit.to_string() in ("G", "Gauss")
    assert m.observer_coordinate.lon.to_value("deg") == pytest.approx(stack_header["HGLN_OBS"], abs=1e-6)
    assert m.observer_coordinate.radius.to_value("m") == pytest.approx(stack_header["DSUN_OBS"], rel=1e-9)
    # STEREO-A was ~86 degrees ahead of Earth in early 2011
    assert 80 < m.observer_coordinate.lon.to_value("deg") < 95


GEOMETRY_KEYS = ("NAXIS1", "NAXIS2", "CTYPE1", "CTYPE2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2",
                 "CDELT1", "CDELT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "HGLN_OBS", "HGLT_OBS",
                 "DSUN_OBS", "RSUN_OBS", "RSUN_REF", "DATE-OBS", "R_SUN", "MASKRAD", "BUNIT")


def test_truth_maps_share_the_predictions_geometry_and_score_perfectly(truth, farside, nearside,
                                                                       tmp_path):
    from farside_gan.evaluation.evaluate import evaluate
    from farside_gan.synthetic import SyntheticSun
    for observer, predictions in (("stereo_a", farside), ("sdo", nearside)):
        [truth_file] = sorted((truth / observer / predictions.name).glob("*.fits"))
        prediction = predictions / truth_file.name
        t_header, p_header = fits.getheader(truth_file), fits.getheader(prediction)
        assert {k: t_header.get(k) for k in GEOMETRY_KEYS} == {k: p_header.get(k) for k in GEOMETRY_KEYS}
        data = fits.getdata(truth_file)
        # the synthetic Sun's LOS field, masked like the prediction: NaN off the disk (beyond
        # MASKRAD), kG spots on it
        expected = np.nan_to_num(SyntheticSun(seed=0).los_field(t_header))
        disk = disk_mask(SIZE, RSUN_PX, MASK_RADIUS)
        np.testing.assert_allclose(data[disk], expected[disk], atol=1e-3)
        assert np.nanmax(np.abs(data)) > 300
        assert np.array_equal(np.isnan(data), ~disk)
        assert np.array_equal(np.isnan(fits.getdata(prediction)), ~disk)
        # scoring the truth against itself: CC 1 and flux ratio 1
        label = "farside/stereo_a/synthetic" if observer == "stereo_a" else "nearside/sdo/synthetic"
        evaluate([truth_file], [truth_file], tmp_path / observer, label=label)
        [row] = _rows(tmp_path / observer / "metrics.csv")
        assert float(row["cc"]) == pytest.approx(1.0) and float(row["cc_binned"]) == pytest.approx(1.0)
        assert float(row["unsigned_flux_ratio"]) == pytest.approx(1.0)
        assert row["n_leading"] == row["n_leading_right"]
        # beside the truth: the sign-blind ceiling on the same grid and mask, and the regions
        with fits.open(truth_file) as hdul:
            assert [h.name for h in hdul] == ["PRIMARY", "CEILING", "REGIONS"]
            assert np.array_equal(np.isnan(hdul["CEILING"].data), ~disk)
            regions = hdul["REGIONS"].data
        assert len(regions) and all(0.19 < mu <= 1 for mu in regions["MU"])
        assert {str(r).split(":")[0] for r in regions["REGION"]} == {"0"}  # the Sun's seed


def test_evaluate_scores_near_side_against_hmi_and_truth_and_far_side_against_truth(evaluated,
                                                                                    ws):
    rows = _rows(evaluated / "metrics.csv")
    assert {(r["side"], r["observer"], r["truth"], r["time"]) for r in rows} == {
        ("nearside", "sdo", "hmi", EVAL_T), ("nearside", "sdo", "synthetic", EVAL_T),
        ("farside", "stereo_a", "synthetic", FARSIDE_T)}
    for r in rows:
        assert -1 <= float(r["cc"]) <= 1 and float(r["rmse"]) > 0
        assert r["bin"] == "1"  # 8x8 at a 450-px radius is 1 pixel at this 26-px radius
        # scored on the disk the data says (0.95 Rsun), not the default 0.98
        assert int(r["n_binned"]) == disk_mask(SIZE, RSUN_PX, MASK_RADIUS).sum()
    # with a synthetic truth: the ceiling's binned CC against the truth (its bin is 1 pixel
    # here), the model's CC over it and the anti-Hale flag, from the truth file's extensions
    for r in rows:
        if r["truth"] == "hmi":
            assert r["anti_hale"] == "" and r["ceiling_cc_binned"] == "nan"
            continue
        observer = "sdo" if r["side"] == "nearside" else "stereo_a"
        period = r["time"][:8] if r["side"] == "nearside" else "20110131"
        with fits.open(ws / f"results/truth/{observer}/{period}/{r['time']}.fits") as hdul:
            truth, ceiling = hdul[0].data, hdul["CEILING"].data
            regions = hdul["REGIONS"].data
        disk = np.isfinite(truth)
        expected = np.corrcoef(ceiling[disk], truth[disk])[0, 1]
        assert float(r["ceiling_cc_binned"]) == pytest.approx(expected, abs=1e-6)
        assert float(r["cc_binned_over_ceiling"]) == pytest.approx(
            float(r["cc_binned"]) / expected, rel=1e-6)
        # an anti-Hale region with 2% of the map's unsigned flux (FLUX mu^2, through the image)
        shares = regions["FLUX"] * regions["MU"] ** 2 / float(r["unsigned_flux_real"])
        flagged = any(regions["ANTIHALE"] & (shares >= 0.02))
        assert r["anti_hale"] == str(int(flagged))
        n_bands = sum(int(r[f"n_mu_{band}"]) for band in ("centre", "middle", "limb"))
        assert n_bands == int(r["n_binned"])
    summary = _rows(evaluated / "summary.csv")
    comparisons = {("nearside", "sdo", "hmi"), ("nearside", "sdo", "synthetic"),
                   ("farside", "stereo_a", "synthetic")}
    assert {(r["side"], r["observer"], r["truth"]) for r in summary} == comparisons
    binned = {(r["side"], r["observer"], r["truth"], r["subset"]): r for r in summary
              if r["metric"] == "cc_binned"}
    for s, o, t in comparisons:
        # one map each: its CC is the mean, no interval (one block of two weeks)
        [row] = [r for r in rows if (r["side"], r["observer"], r["truth"]) == (s, o, t)]
        stats = binned[(s, o, t, "all")]
        assert float(stats["mean"]) == pytest.approx(float(row["cc_binned"]))
        assert (stats["n"], stats["n_blocks"], stats["ci_low"]) == ("1", "1", "nan")
        subset = {"": None, "0": "clean", "1": "anti_hale"}[row["anti_hale"]]
        assert {k[3] for k in binned if k[:3] == (s, o, t)} == {"all"} | ({subset} - {None})
    for png in ("scatter.png", "flux.png"):
        assert (evaluated / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((evaluated / "maps").glob("*.png"))) == 3


def test_quicklook_plots_the_farside_map(quicklook):
    import matplotlib.image
    image = matplotlib.image.imread(quicklook / f"{FARSIDE_T}.png")
    # 5.6 x 5.4 inches at 90 dpi, trimmed to what is drawn (the labels:
    # tests/unit/products/test_quicklook.py)
    assert 380 < image.shape[0] < 486 and 440 < image.shape[1] < 560
    # the disk is drawn: colours vary in the middle of the figure
    centre = image[150:250, 160:260, :3].mean(axis=2)
    assert centre.std() > 0.01


@pytest.fixture(scope="module")
def report_page(evaluated, quicklook, synchronic, ws):
    run_rule(ws, "report_page", ["results/report/page.rst"])
    return ws / "results/report"


def test_report_page_shows_the_runs_tables_figure_and_maps(report_page, quicklook, ws):
    import base64
    import re
    page = (report_page / "page.rst").read_text()
    with open(ws / "results/evaluation/summary.csv", newline="") as f:
        means = [r for r in csv.DictReader(f)
                 if r["metric"] == "cc_binned" and r["subset"] == "all"]
    # the evaluation table: a column per comparison, their mean binned CC
    assert "near side, SDO vs HMI" in page and "far side, STEREO-A vs synthetic truth" in page
    table = page[page.index("Evaluation summary"):page.index("Pearson CC")]
    binned = table[table.index("* - CC binned, all maps"):].split("* -")[1]
    assert [line.strip("- \n") for line in binned.splitlines()[1:len(means) + 1]] == \
        [f"{float(r['mean']):.3f}".replace("-", "\\-", 1) for r in means]
    # the manifest's counts and the eclipse drop of 01-31 12 UT
    assert "**3** times, **2** usable AIA/HMI pairs (1 eval, 1 train), **1** dropped" in page
    assert "``eclipse``" in page
    # the loss figure, the farside quicklook and the synchronic map, embedded
    images = [base64.b64decode(re.sub(r"\s", "", m))
              for m in re.findall(r'base64,\s*([A-Za-z0-9+/=\s]+)"', page)]
    assert images == [(report_page / "losses.png").read_bytes(),
                      (quicklook / f"{FARSIDE_T}.png").read_bytes(),
                      (ws / f"results/quicklook/synchronic/20110131/{FARSIDE_T}.png").read_bytes()]


def test_synchronic_merges_hmi_and_the_farside_map_on_a_carrington_grid(synchronic, farside,
                                                                        prepared, ws, tmp_path):
    """One map per farside time of the period (the eclipse-dropped 12 UT HMI frame has no
    farside partner), as the library makes it from the same files; the near side, HMI's view
    of the synthetic Sun, follows the Sun's true radial field on the Carrington grid."""
    import sunpy.map
    from sunpy.coordinates import HeliographicCarrington

    from farside_gan.products.synchronic import (SynchronicSettings, parse_time_key, source_on_grid,
                                                 synchronic_period)
    from farside_gan.synthetic import SyntheticSun
    from farside_gan.synthetic.truth import carrington_truth
    [path] = sorted(synchronic.glob("*.fits"))
    assert path.name == f"{FARSIDE_T}.fits"
    smap = sunpy.map.Map(path, hdus=0)
    assert isinstance(smap.coordinate_frame, HeliographicCarrington)
    assert smap.data.shape == (180, 360) and smap.meta["ctype1"] == "CRLN-CEA"
    [expected] = synchronic_period(tmp_path, {"stereo_a": farside}, prepared / "hmi/20110131")
    np.testing.assert_array_equal(fits.getdata(path), fits.getdata(expected))
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "SOURCE", "MU", "PROVENANCE"]  # no ensemble
        prov = hdul["PROVENANCE"].data
        assert list(prov["ROLE"]) == ["hmi", "stereo_a"]
        assert prov["FILE"][0] == f"data/prepared/hmi/20110131/aligned/magnetogram/{FARSIDE_T}.fits"
        assert prov["SHA256"][1] == hashlib.sha256((farside / path.name).read_bytes()).hexdigest()
        field, source = hdul[0].data, hdul["SOURCE"].data
        truth = carrington_truth(SyntheticSun(seed=0), hdul[0].header, parse_time_key(FARSIDE_T))
    # where HMI alone sees the Sun (elsewhere the tiny model's farside map is blended in)
    stereo_a = source_on_grid("stereo_a", farside / path.name, SynchronicSettings())
    near = (source == 1) & ~np.isfinite(stereo_a.value)
    assert near.sum() > 0.2 * field.size and np.all(np.isfinite(field[near]))
    assert np.corrcoef(field[near], truth[near])[0, 1] > 0.8
    assert (ws / f"results/quicklook/synchronic/20110131/{FARSIDE_T}.png").stat().st_size > 10_000
    assert list((ws / "results/quicklook/uncertainty/20110131").glob("*.png")) == []


def test_calibrate_uncertainty_fits_the_near_side_factor_on_the_synchronic_grid(nearside,
                                                                               prepared, ws,
                                                                               tmp_path):
    """In a copy of the workspace whose near-side maps carry an ensemble's UNCERTAINTY (a
    constant 100 G here), the rule writes the library's factor for the configured grid."""
    import json
    import shutil

    from farside_gan.products.synchronic import SynchronicSettings
    from farside_gan.products.uncertainty import uncertainty_hdu
    from farside_gan.products.uncertainty_calibration import fit_calibration
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy, symlinks=True)
    for path in sorted((copy / "results/nearside/20110201").glob("*.fits")):
        with fits.open(path) as hdul:
            data, header = hdul[0].data, hdul[0].header
            sigma = np.where(data != 0, 100.0, 0.0).astype(np.float32)
            fits.HDUList([fits.PrimaryHDU(data, header),
                          uncertainty_hdu(sigma, header, 2)]).writeto(path, overwrite=True)
    grid = {"projection": "CAR", "pixels": [90, 45]}
    write_config(copy / "ensemble.yaml", {"training": {"keep_every_epochs": 1},
                                          "synchronic": {"ensemble_members": 2, **grid}})
    # the changed settings would rerun the model and inference, which are not what is tested
    run_snakemake(copy, "results/uncertainty/calibration.json", "--cores", "1",
                  "--rerun-triggers", "mtime", "--allowed-rules", "calibrate_uncertainty",
                  configfiles=[copy / "config.yaml", copy / "ensemble.yaml"])
    result = json.loads((copy / "results/uncertainty/calibration.json").read_text())
    expected = fit_calibration(
        [(p, copy / f"data/prepared/hmi/20110201/aligned/magnetogram/{p.name}")
         for p in sorted((copy / "results/nearside/20110201").glob("*.fits"))],
        grid=SynchronicSettings(projection="CAR", pixels=(90, 45)))
    assert result["factor"] == pytest.approx(expected["factor"]) and result["maps"] == 1
    assert result["grid"]["pixels"] == [90, 45] and result["pairs"][0]["map"].endswith(
        f"results/nearside/20110201/{EVAL_T}.fits")
