"""Submit workflow jobs to a real Slurm through the SLURM profile (skipped without Slurm).

`.ci/start-slurm` starts a single-node Slurm (Debian's slurm-wlm 22.05) on localhost. The test
runs the first stages of a tiny config (synthetic archive, one HMI fetch batch, its preparation)
as sbatch jobs and checks their outputs and what Slurm was asked for.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from test_workflow_helpers import REPO, run_snakemake, write_config


def slurm_node_up() -> bool:
    if not (shutil.which("sbatch") and shutil.which("sinfo")):
        return False
    proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return proc.returncode == 0 and any(s.strip() in ("idle", "mix") for s in proc.stdout.split())


pytestmark = pytest.mark.skipif(not slurm_node_up(),
                                reason="no Slurm node up (start one with .ci/start-slurm)")

T = "20110131T0000"


def test_slurm_profile_runs_jobs_through_sbatch(tmp_path):
    config = write_config(tmp_path / "config.yaml", {
        "start": "2011-01-31T00:00", "end": "2011-01-31T12:00",
        "synthetic": {"enabled": True, "size": 64, "euvi_size": 64, "seed": 0},
        "fetch": {"source": "local", "euvi_source": "local", "archive": "data/archive",
                  "batch": "day"},
        "image": {"size": 64, "rsun_px": 28.125},
        "training": {"device": "cpu", "gpus": 0},
        "farside": {"spacecraft": {}},
    })
    # localhost Slurm has no accounting database: no account, job status from squeue
    proc = run_snakemake(tmp_path, "--profile", REPO / "workflow/profiles/slurm",
                         "--slurm-no-account", "--slurm-status-command", "squeue",
                         "--slurm-init-seconds-before-status-checks", "1",
                         "--seconds-between-status-checks", "2", "--latency-wait", "5",
                         "data/prepared/hmi/20110131", configfiles=[config], timeout=600)
    output = proc.stdout + proc.stderr
    # log paths: slurm_logs/rule_<rule>/... or, for the profile's job groups, group_<group>_<rules>/
    job_ids = {name: jid for jid, name in re.findall(
        r"has been submitted with SLURM jobid (\d+) \(log: \S+/slurm_logs/(?:rule|group)_(\w+)/",
        output)}
    assert set(job_ids) == {"synth_archive", "fetch", "prepare"}

    record = json.loads((tmp_path / f"data/raw/hmi/20110131/magnetogram/{T}/record.json").read_text())
    assert record["status"] == "ok"
    prepared = json.loads((tmp_path / "data/prepared/hmi/20110131/records.json").read_text())
    assert [e["status"] for e in prepared["times"]] == ["ok", "ok"]
    assert (tmp_path / f"data/prepared/hmi/20110131/targets/{T}.fits").stat().st_size > 64 * 64 * 4

    # what Slurm ran: completed jobs with the profile's and the rules' resources
    for rule, jid in job_ids.items():
        info = subprocess.run(["scontrol", "show", "job", "-o", jid], capture_output=True,
                              text=True).stdout
        assert "JobState=COMPLETED" in info, info
        if rule == "fetch":  # runtime 480 min from the profile, mem_mb 2000 from the rule
            assert "TimeLimit=08:00:00" in info and "MinMemoryNode=2000M" in info, info
