"""The execution profiles: the local default and the SLURM one (snakemake-executor-plugin-slurm).

The SLURM profile is loaded by Snakemake itself in a dry run of a small workspace whose fetches
are already done (record.json files in place), so that the GPU rules are planned and their
resources can be read; the plugin's own code turns them into sbatch arguments.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from test_workflow_helpers import REPO, dry_run_resources, run_snakemake, write_config

SLURM_PROFILE = REPO / "workflow/profiles/slurm"
DEFAULT_PROFILE = REPO / "workflow/profiles/default"
T = "20110101T0000"
CHANNELS = {"aia": ("304", "193", "171"), "hmi": ("magnetogram",), "euvi_a": ("304", "195", "171")}


def test_slurm_profile_settings():
    profile = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1 and profile["jobs"] >= 1
    defaults = profile["default-resources"]
    assert defaults["mem_mb"] > 0 and defaults["runtime"] > 0
    for rule in ("train", "predict_nearside", "predict_farside"):
        assert profile["set-resources"][rule]["cpus_per_gpu"] >= 1


def test_default_profile_is_local():
    profile = yaml.safe_load((DEFAULT_PROFILE / "config.yaml").read_text())
    assert "executor" not in profile and profile["rerun-incomplete"] is True


@pytest.fixture
def fetched_workspace(tmp_path):
    """A real-style config (fido, 1 day) whose fetch batches and manifest already exist."""
    config = {"start": "2011-01-01T00:00", "end": "2011-01-01T00:00",
              "fetch": {"source": "fido"},
              "farside": {"spacecraft": {"euvi_a": {"start": "2011-01-01T00:00",
                                                    "end": "2011-01-01T00:00"}}}}
    # oldest first, as a run would have made them: calibration tables, fetches, manifest
    calibration = tmp_path / "data/calibration"
    calibration.mkdir(parents=True)
    os.utime(calibration, (1e9, 1e9))
    for inst, chans in CHANNELS.items():
        for ch in chans:
            d = tmp_path / f"data/raw/{inst}/201101/{ch}/{T}"
            d.mkdir(parents=True)
            (d / "record.json").write_text(json.dumps({"status": "ok"}))
        os.utime(tmp_path / f"data/raw/{inst}/201101", (1e9 + 1, 1e9 + 1))
    (tmp_path / "data/manifest.csv").write_text(
        "time,split,input,target,status,reason,detail\n"
        f"2011-01-01T00:00:00,eval,data/stacks/aia/{T}.fits,"
        f"data/normalized/hmi/magnetogram/{T}.fits,ok,,\n")
    return tmp_path, write_config(tmp_path / "config.yaml", config)


def slurm_dry_run(workdir, configs):
    # the fixture's files have no Snakemake provenance: judge them by modification times only
    proc = run_snakemake(workdir, "-n", "--profile", SLURM_PROFILE, "--rerun-triggers", "mtime",
                         configfiles=configs)
    return proc.stdout + proc.stderr


def test_slurm_profile_gives_gpu_rules_their_gpus(fetched_workspace):
    workdir, config = fetched_workspace
    output = slurm_dry_run(workdir, [config])
    resources = dry_run_resources(output)
    assert {"train", "predict_nearside", "predict_farside", "calibrate", "stack"} <= set(resources)
    train = resources["train"]
    assert (train["gpu"], train["cpus_per_gpu"], train["mem_mb"], train["runtime"]) == \
        ("1", "8", "64000", "2880")
    for rule in ("predict_nearside", "predict_farside"):
        assert (resources[rule]["gpu"], resources[rule]["cpus_per_gpu"]) == ("1", "4")
    for rule in ("calibrate", "align", "normalize", "stack"):
        assert resources[rule].get("gpu", "0") == "0"
        assert resources[rule]["mem_mb"] != "" and int(resources[rule]["runtime"]) > 0


def test_slurm_profile_multi_gpu_training_uses_the_local_launcher(fetched_workspace, tmp_path):
    workdir, config = fetched_workspace
    gpus4 = write_config(tmp_path / "gpus4.yaml", {"training": {"gpus": 4}})
    output = slurm_dry_run(workdir, [config, gpus4])
    assert dry_run_resources(output)["train"]["gpu"] == "4"
    # one process per GPU, rendezvous on 127.0.0.1 (not torchrun --standalone: all interfaces)
    assert "python -m farside_gan.distributed --nproc-per-node=4 train" in output
    assert "torchrun" not in output


def test_cpu_training_asks_for_no_gpu(fetched_workspace, tmp_path):
    workdir, config = fetched_workspace
    cpu = write_config(tmp_path / "cpu.yaml", {"training": {"device": "cpu"}})
    resources = dry_run_resources(slurm_dry_run(workdir, [config, cpu]))
    assert resources["train"]["gpu"] == "0" and resources["predict_farside"]["gpu"] == "0"


class _Resources(dict):
    __getattr__ = dict.__getitem__


class _Job:
    def __init__(self, **resources):
        self.resources = _Resources(resources)


@pytest.mark.parametrize("resources, sbatch", [
    ({"gpu": 1}, " --gpus=1"),
    ({"gpu": 4, "gpu_model": "a100"}, " --gpus=a100:4"),
    ({"gpu": 0}, ""),
])
def test_plugin_turns_gpu_resources_into_sbatch_gpus(resources, sbatch):
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    assert set_gres_string(_Job(**resources)) == sbatch
