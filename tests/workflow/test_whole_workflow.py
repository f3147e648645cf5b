"""The workflow as a whole: config schema, lint, the real config's DAG, the demo end to end, -R.

The end-to-end demo test (`slow`) runs config/demo.yaml offline, from the synthetic archive to
farside FITS maps, and then checks that forcing one rule reruns only what depends on it.
"""

from __future__ import annotations

import copy
import csv
import time

import pytest
import yaml
from helpers.workflow import DEMO_CONFIG, REAL_CONFIG, REPO, job_counts, run_snakemake

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def validate(config: dict) -> dict:
    from snakemake.utils import validate as snakemake_validate
    config = copy.deepcopy(config)
    snakemake_validate(config, str(SCHEMA))
    return config


def test_schema_fills_published_defaults():
    config = validate({"start": "2011-01-01T00:00", "end": "2011-01-02T00:00"})
    assert config["image"] == {"size": 1024, "rsun_px": 450.0, "mask_radius": 0.98, "fill": 0.0}
    assert config["normalize"] == {"euv_median": 100.0, "euv_clip": [1.0, 200.0], "hmi_clip": 3000.0}
    assert config["cadence_hours"] == 12
    assert config["dataset"] == {"pair_tolerance": "6m", "seed": 0, "eval_months": 2}
    assert config["fetch"]["source"] == "jsoc" and config["fetch"]["batch"] == "month"


@pytest.mark.parametrize("section, value, words", [
    ("image", {"size": "big"}, ["'big' is not of type 'integer'", "size"]),
    ("fetch", {"source": "ftp"}, ["'ftp' is not one of", "source"]),
    ("normalize", {"euv_clip": [1.0]}, ["euv_clip"]),
    ("dataset", {"pair_tolerance": "6 minutes"}, ["does not match", "pair_tolerance"]),
    ("synchronic", {"ensemble_members": 1}, ["ensemble_members"]),
    ("synchronic", {"projection": "TAN"}, ["'TAN' is not one of", "projection"]),
])
def test_schema_rejects_bad_values_naming_the_key(section, value, words):
    from snakemake.exceptions import WorkflowError
    with pytest.raises(WorkflowError) as info:
        validate({"start": "2011-01-01T00:00", "end": "2011-01-02T00:00", section: value})
    message = str(info.value)
    for word in words:
        assert word in message


def test_schema_fills_synchronic_defaults():
    config = validate({"start": "2011-01-01T00:00", "end": "2011-01-02T00:00"})
    assert config["synchronic"] == {
        "enabled": True, "projection": "CEA", "pixels": [360, 180], "weight_power": 4,
        "radial": True, "mu_min": 0.1, "algorithm": "adaptive", "ensemble_members": 0,
        "calibrate_uncertainty": True}


def test_ensemble_plan_needs_the_checkpoints_training_keeps(tmp_path):
    """An ensemble of N needs N - 1 kept checkpoints before the last epoch: refused while
    planning, naming the keys; with them, both predict rules ask for the ensemble."""
    from helpers.workflow import write_config
    write_config(tmp_path / "ens.yaml", {"synchronic": {"ensemble_members": 3}})
    proc = run_snakemake(tmp_path, "-n", configfiles=[DEMO_CONFIG, tmp_path / "ens.yaml"],
                         check=False)
    assert proc.returncode != 0
    assert "synchronic.ensemble_members 3 needs 2 checkpoints" in proc.stdout + proc.stderr
    assert "keep_every_epochs 10" in proc.stdout + proc.stderr
    write_config(tmp_path / "keep.yaml", {"training": {"keep_every_epochs": 4}})
    proc = run_snakemake(tmp_path, "-n", "-p", configfiles=[DEMO_CONFIG, tmp_path / "ens.yaml",
                                                            tmp_path / "keep.yaml"])
    out = proc.stdout + proc.stderr
    assert out.count("--ensemble-members 3") == 3  # 2 farside, 1 near-side inference
    counts = job_counts(out)
    assert counts["calibrate_uncertainty"] == 1 and counts["synchronic"] == 1


def test_both_configs_validate():
    for path in (REAL_CONFIG, DEMO_CONFIG):
        validate(yaml.safe_load(path.read_text()))


def test_missing_configfile_is_a_clear_error(tmp_path):
    proc = run_snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0
    assert "--configfile config/config.yaml" in proc.stdout + proc.stderr


def test_lint_passes(tmp_path):
    proc = run_snakemake(tmp_path, "--lint", configfiles=[DEMO_CONFIG])
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_real_config_dry_run_plans_the_whole_2011_to_2017_dag_in_seconds(tmp_path):
    """Every job is planned up front (no checkpoints): one per instrument and month for fetch
    and prepare (AIA and HMI for the 84 months of 2011-2017, EUVI-A for 84 and EUVI-B for 45, to
    2014-09), farside inference and quicklooks per spacecraft and month, near-side inference for
    the evaluation months (2 a year)."""
    start = time.perf_counter()
    proc = run_snakemake(tmp_path, "-n", "--quiet", "all", configfiles=[REAL_CONFIG])
    seconds = time.perf_counter() - start
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["fetch"] == counts["prepare"] == 84 + 84 + 84 + 45
    assert counts["predict_farside"] == counts["quicklook"] == 84 + 45
    assert counts["predict_nearside"] == 7 * 2
    assert counts["synchronic"] == 84  # one per month with a farside map
    assert counts["manifest"] == counts["train"] == counts["evaluate"] == counts["all"] == 1
    assert counts["calibration_tables"] == counts["report_page"] == 1
    assert "synth_archive" not in counts and "truth" not in counts  # real data: no truth
    assert counts["total"] == 297 * 2 + 129 * 2 + 14 + 84 + 6
    assert seconds < 60, f"dry run took {seconds:.1f} s"


# ---------------------------------------------------------------- the demo, end to end

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo DAG run to completion, with its wall time."""
    workdir = tmp_path_factory.mktemp("demo")
    start = time.perf_counter()
    proc = run_snakemake(workdir, "--cores", "2", configfiles=[DEMO_CONFIG], timeout=1500)
    return workdir, time.perf_counter() - start, proc.stdout + proc.stderr


@pytest.mark.slow
def test_demo_runs_offline_to_farside_maps(demo):
    import numpy as np
    import sunpy.map
    from astropy.io import fits

    from farside_gan.core.geometry import disk_mask
    workdir, seconds, _ = demo
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    run = workdir / config["workdir"]  # the demo writes under its own run directory
    assert sorted(p.name for p in workdir.iterdir() if not p.name.startswith(".")) == ["runs"]
    for sc, instrument in (("stereo_a", "euvi_a"), ("stereo_b", "euvi_b")):
        maps = sorted((run / "results/farside" / sc / "20110131").glob("*.fits"))
        assert [p.stem for p in maps] == ["20110131T0000"]
        for path in maps:
            m = sunpy.map.Map(path)
            stack = fits.getheader(run / "data/prepared" / instrument / "20110131/stacks" / path.name)
            assert m.data.shape == (config["image"]["size"],) * 2
            assert fits.getheader(path)["BUNIT"] == "Gauss"
            assert m.observer_coordinate.lon.to_value("deg") == pytest.approx(stack["HGLN_OBS"])
            # Gauss on the disk the stack's header gives, NaN off it (as HMI's level 1.5)
            disk = disk_mask(config["image"]["size"], stack["R_SUN"], stack["MASKRAD"])
            assert np.all(np.isfinite(m.data[disk])) and np.all(np.isnan(m.data[~disk]))
    with open(run / "data/manifest.csv", newline="") as f:
        splits = [r["split"] for r in csv.DictReader(f) if r["status"] == "ok"]
    assert splits.count("train") == 4 and splits.count("eval") == 2
    with open(run / "results/evaluation/metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # the 2 evaluation times against HMI and the truth; each farside map against the truth
    assert sorted((r["side"], r["observer"], r["truth"]) for r in rows) == sorted(
        [("nearside", "sdo", "hmi")] * 2 + [("nearside", "sdo", "synthetic")] * 2
        + [("farside", "stereo_a", "synthetic"), ("farside", "stereo_b", "synthetic")])
    # against the synthetic truth: the sign-blind ceiling (quiet January 2011: 0.8-1) and the
    # anti-Hale flag; HMI has neither
    for r in rows:
        synthetic = r["truth"] == "synthetic"
        assert (0.8 < float(r["ceiling_cc_binned"]) <= 1) if synthetic else \
            r["ceiling_cc_binned"] == "nan"
        assert r["anti_hale"] in (("0", "1") if synthetic else ("",))
    # the synchronic map of the farside time: HMI and both STEREOs on one Carrington grid
    synchronic = run / "results/synchronic/20110131/20110131T0000.fits"
    smap = sunpy.map.Map(synchronic, hdus=0)
    assert smap.coordinate_frame.name == "heliographic_carrington" and smap.unit == "G"
    assert list(fits.getdata(synchronic, "PROVENANCE")["ROLE"]) == ["hmi", "stereo_a", "stereo_b"]
    assert {1, 2, 3} <= set(np.unique(fits.getdata(synchronic, "SOURCE")))
    assert (run / "results/quicklook/synchronic/20110131/20110131T0000.png").exists()
    assert seconds < 15 * 60, f"demo took {seconds / 60:.1f} min"
    print(f"demo wall time: {seconds:.0f} s")


@pytest.mark.slow
def test_demo_report_holds_the_evaluation_plots(demo):
    """The README's report command (no --cores; the config files read again after `workdir:`)
    makes a report whose landing page (the workflow description) opens on the run: the
    evaluation summary as a table, the loss figure, the latest farside maps, the data, the
    configuration; the categories hold every plot and quicklook."""
    import base64
    import json
    import re

    workdir, _, _ = demo
    run = workdir / "runs/demo"
    proc = run_snakemake(workdir, "--report", "report.html", configfiles=[DEMO_CONFIG])
    assert "never awaited" not in proc.stdout + proc.stderr
    html = (run / "report.html").read_text(errors="replace")  # in the run directory, as the
    # configuration's `workdir:` puts every path of the run
    for name in ("scatter.png", "flux.png", "metrics.csv", "20110131T0000.png", "losses.png",
                 "farside_stereo_a_synthetic_20110131T0000.png"):
        assert name in html
    landing = json.loads(re.search(r"var workflow_desc = (.*);\n", html).group(1))
    assert "System Message" not in landing  # docutils rendered it without a complaint
    assert landing.index("<h1") < landing.index("Evaluation summary") < landing.index("Training")
    table = landing[landing.index("Evaluation summary"):]
    table = table[:table.index("</table>")]
    with open(run / "results/evaluation/summary.csv", newline="") as f:
        means = [r for r in csv.DictReader(f)
                 if r["metric"] == "cc_binned" and r["subset"] == "all"]
    assert len(means) == 4
    for r in means:
        assert f"{float(r['mean']):.3f}" in table
    for comparison in ("near side, SDO vs HMI", "near side, SDO vs synthetic truth",
                       "far side, STEREO-A vs synthetic truth",
                       "far side, STEREO-B vs synthetic truth"):
        assert comparison in table
    images = [base64.b64decode(re.sub(r"\s", "", m))
              for m in re.findall(r'src="data:image/png;base64,([^"]+)"', landing)]
    assert images == [(run / "results/report/losses.png").read_bytes(),
                      (run / "results/quicklook/stereo_a/20110131/20110131T0000.png").read_bytes(),
                      (run / "results/quicklook/stereo_b/20110131/20110131T0000.png").read_bytes(),
                      (run / "results/quicklook/synchronic/20110131/20110131T0000.png").read_bytes()]
    assert "<strong>6</strong> times, <strong>6</strong> usable AIA/HMI pairs (2 eval, 4 train)" \
        in landing
    assert "Configuration" in landing and "every 12 h" in landing


@pytest.mark.slow
def test_forcerun_redoes_only_dependents(demo):
    workdir, _, _ = demo
    run = workdir / "runs/demo"
    outputs = {p: p.stat().st_mtime_ns for p in
               [*(run / "data/prepared").rglob("*.fits"), run / "data/manifest.csv",
                run / "results/model/generator.pt", *(run / "results/nearside").rglob("*.fits"),
                *(run / "results/truth").rglob("*.fits"), *(run / "results/farside").rglob("*.fits"),
                run / "results/evaluation/metrics.csv"]}
    # nothing to do on a finished run
    proc = run_snakemake(workdir, "-n", "--quiet", "all", configfiles=[DEMO_CONFIG])
    assert "Nothing to be done" in proc.stdout + proc.stderr
    # forcing the farside inference reruns those 2 jobs, their quicklooks, their evaluation, the
    # synchronic map, the report's page and the final target
    proc = run_snakemake(workdir, "--cores", "2", "-R", "predict_farside",
                         configfiles=[DEMO_CONFIG])
    assert job_counts(proc.stdout + proc.stderr) == {
        "predict_farside": 2, "quicklook": 2, "evaluate": 1, "synchronic": 1, "report_page": 1, "all": 1,
        "total": 8}
    for path, mtime in outputs.items():
        changed = path.stat().st_mtime_ns != mtime
        assert changed == ("results/farside" in str(path) or "results/evaluation" in str(path)), path
    # forcing the manifest plans the model and everything after it, but no data preparation
    proc = run_snakemake(workdir, "-n", "--quiet", "rules", "-R", "manifest",
                         configfiles=[DEMO_CONFIG])
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["manifest"] == 1 and counts["train"] == 1 and counts["evaluate"] == 1
    assert not {"fetch", "prepare", "synth_archive", "truth"} & set(counts)
