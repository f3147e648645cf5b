"""A run whose configuration changes afterwards, as users change theirs.

A changed time grid after a fetch plans (no `FileNotFoundError` on the record.json of a time
that was never fetched): the fetch of a period is a plain job whose output is the period's
index, so a new grid reruns it (its parameters changed), the frames it already has are kept and
the new ones fetched. The demo and the real run share no `data/`, `results/` or `logs/`: each
configuration writes under its own `workdir`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from helpers.workflow import DEMO_CONFIG, REAL_CONFIG, job_counts, run_snakemake, write_config

DAY = "20110131"


@pytest.fixture(scope="module")
def archive(tmp_path_factory, synthetic_sun):
    """HMI every 6 h on 2011-01-31 (a local archive: the workflow does not build it)."""
    from farside_gan.synthetic import build_archive
    root = tmp_path_factory.mktemp("grid_archive")
    times = [datetime(2011, 1, 31) + timedelta(hours=6 * i) for i in range(4)]
    build_archive(root, times, instruments=("hmi",), size=64, seed=0, sun=synthetic_sun)
    return root


def grid_config(path, archive, cadence_hours):
    return write_config(path, {
        "start": "2011-01-31T00:00", "end": "2011-01-31T18:00", "cadence_hours": cadence_hours,
        "fetch": {"source": "local", "euvi_source": "local", "archive": str(archive),
                  "batch": "day"},
        "image": {"size": 32, "rsun_px": 14.0625},
        "training": {"device": "cpu", "gpus": 0},
        "farside": {"spacecraft": {}},
    })


def index(workdir):
    return json.loads((workdir / f"data/raw/hmi/{DAY}/records.json").read_text())


def test_a_changed_time_grid_fetches_the_new_times_and_keeps_the_others(tmp_path, archive):
    target = f"data/prepared/hmi/{DAY}"
    run_snakemake(tmp_path, target, "--cores", "2",
                  configfiles=[grid_config(tmp_path / "c12.yaml", archive, 12)])
    first = index(tmp_path)
    assert [r["requested_time"][11:16] for r in first["records"]] == ["00:00", "12:00"]
    frames = {r["requested_time"]: tmp_path / f"data/raw/hmi/{DAY}" / r["dir"] / "frame.fits"
              for r in first["records"]}
    mtimes = {t: p.stat().st_mtime_ns for t, p in frames.items()}

    # every 6 h now: the period's fetch and preparation run again (and only they)
    c6 = grid_config(tmp_path / "c6.yaml", archive, 6)
    plan = run_snakemake(tmp_path, target, "-n", configfiles=[c6])
    assert job_counts(plan.stdout + plan.stderr) == {"fetch": 1, "prepare": 1, "total": 2}
    run_snakemake(tmp_path, target, "--cores", "2", configfiles=[c6])
    second = index(tmp_path)
    assert [r["requested_time"][11:16] for r in second["records"]] == ["00:00", "06:00", "12:00",
                                                                       "18:00"]
    actions = {r["requested_time"][11:16]: r["action"] for r in second["records"]}
    assert actions == {"00:00": "kept", "06:00": "downloaded", "12:00": "kept", "18:00": "downloaded"}
    assert {t: p.stat().st_mtime_ns for t, p in frames.items()} == mtimes  # not downloaded again
    prepared = json.loads((tmp_path / target / "records.json").read_text())
    assert [(e["time"], e["status"]) for e in prepared["times"]] == [
        (f"{DAY}T{h}", "ok") for h in ("0000", "0600", "1200", "1800")]


def test_each_configuration_runs_in_its_own_directory(tmp_path):
    """The demo and the published run plan in runs/demo and runs/published: a finished demo is
    nothing to the real run's plan (the dry run plans all of the real run, none of the demo)."""
    demo = run_snakemake(tmp_path, "-n", configfiles=[DEMO_CONFIG])
    real = run_snakemake(tmp_path, "-n", configfiles=[REAL_CONFIG])
    assert "runs/demo" in demo.stdout + demo.stderr
    assert "runs/published" in real.stdout + real.stderr
    (tmp_path / "runs/demo/data").mkdir(parents=True)
    (tmp_path / "runs/demo/data/manifest.csv").write_text("time,split\n")
    again = run_snakemake(tmp_path, "-n", "--quiet", "all", configfiles=[REAL_CONFIG])
    assert job_counts(again.stdout + again.stderr)["manifest"] == 1
    assert not (tmp_path / "runs/published/data/manifest.csv").exists()
