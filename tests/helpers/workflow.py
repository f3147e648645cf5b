"""Running the workflow from tests: Snakemake in a subprocess on a scratch directory.

No tests here; the tests of tests/workflow/ and a few others share these helpers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from helpers import REPO
from helpers.model import write_manifest

SNAKEFILE = REPO / "workflow" / "Snakefile"
REAL_CONFIG = REPO / "config" / "config.yaml"
DEMO_CONFIG = REPO / "config" / "demo.yaml"


def snakemake_env() -> dict:
    """This interpreter's bin first on PATH (rules run `python -m farside_gan`), one BLAS thread."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    return env


def snakemake_command(workdir: Path, *args, configfiles=()) -> list[str]:
    """`snakemake --snakefile workflow/Snakefile ARGS --configfile ...`, to run from WORKDIR.

    No --directory: it would override the config's `workdir` (the run directory), as it does
    for a user who gives one. The config files come last: --configfile takes every word after
    it."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE)]
    cmd += [str(a) for a in args]
    if configfiles:
        cmd += ["--configfile", *map(str, configfiles)]
    return cmd


def run_snakemake(workdir: Path, *args, configfiles=(), check: bool = True,
                  timeout: float = 900) -> subprocess.CompletedProcess:
    """Run :func:`snakemake_command` in WORKDIR; with ``check``, fail showing its output and logs."""
    cmd = snakemake_command(workdir, *args, configfiles=configfiles)
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=snakemake_env(),
                          timeout=timeout)
    if check and proc.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}"
                         for p in sorted(Path(workdir).rglob("logs/**/*.log"))[-6:])
        raise AssertionError(f"snakemake failed ({proc.returncode}): {' '.join(cmd)}\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}\n{logs}")
    return proc


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run or dry run: {rule: count}."""
    table = output[output.index("Job stats:"):]
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def dry_run_resources(output: str) -> dict[str, dict[str, str]]:
    """{rule: resources} from a dry run's job listing (the last job of each rule wins)."""
    resources, rule = {}, None
    for line in output.splitlines():
        m = re.match(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):", line)
        if m:
            rule = m.group(1)
            continue
        m = re.match(r"^\s+resources: (.*)$", line)
        if m and rule:
            resources[rule] = dict(item.split("=", 1) for item in m.group(1).split(", "))
    return resources


SLURM_PROFILE = REPO / "workflow" / "profiles" / "slurm"


def site_slurm_profile(directory: Path, account: str, cpu_partition: str, gpu_partition: str,
                       train: dict | None = None) -> Path:
    """The SLURM profile as a user sets it up (README): a copy with the account and the CPU and
    GPU partitions filled in, and ``train`` overriding the train rule's set-resources."""
    profile = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    profile["default-resources"].update(slurm_account=account, slurm_partition=cpu_partition)
    for rule in ("train", "predict_nearside", "predict_farside"):
        profile["set-resources"][rule]["slurm_partition"] = gpu_partition
    profile["set-resources"]["train"].update(train or {})
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return directory


# Where the train rule reads its manifest and writes its outputs, relative to the workspace.
MANIFEST = Path("data/manifest.csv")
MODEL_DIR = Path("results/model")
TRAIN_LOG = Path("logs/train.log")

TINY_MODEL = {"ngf": 4, "ndf": 4, "n_downsample": 2, "n_residual": 1}
# 4 training pairs, batch 1: 4 steps an epoch; 60 steps in all, a checkpoint every 5.
TINY_TRAINING = {"epochs": 20, "epoch_decay": 10, "max_steps": 60, "batch_size": 1,
                 "log_every": 1, "checkpoint_every": 5, "preview_every": 0,
                 "keep_every_epochs": 0, "num_threads": 1, "seed": 1,
                 "augment_rotation_deg": 5.0, "device": "cpu", "gpus": 0}


def train_workspace(workdir: Path, training: dict | None = None) -> Path:
    """A workspace ready for the train rule: manifest with 4 train + 1 eval pairs; returns the
    config file (one observation time; nothing else of the workflow is run)."""
    write_manifest(workdir / MANIFEST.parent, n_train=4, n_eval=1, n=64)
    return write_config(workdir / "config.yaml", {
        "start": "2011-01-01T00:00", "end": "2011-01-01T00:00",
        "fetch": {"source": "local", "euvi_source": "local", "archive": "data/archive"},
        # the pairs' frame (helpers.model: 64 px, the published disk ratio); training checks it
        "image": {"size": 64, "rsun_px": 64 * 450 / 1024},
        "model": TINY_MODEL, "training": {**TINY_TRAINING, **(training or {})},
    })


def train_args(*extra) -> list:
    # the target after --cores N: an option taking a list (--allowed-rules) would swallow it
    return ["--allowed-rules", "train", *extra, "--cores", "1", MODEL_DIR / "generator.pt"]


def checkout_copy(directory: Path) -> Path:
    """A directory that looks like a clone of this repository (its parts linked in), where
    `snakemake` runs as a user runs it: no --snakefile, --directory or --configfile needed."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("workflow", "config", "envs", "farside_gan", "environment.yml", "pyproject.toml",
                 "README.md"):
        (directory / name).symlink_to(REPO / name)
    return directory


def run_in_checkout(checkout: Path, argv: list[str],
                    timeout: float = 900) -> subprocess.CompletedProcess:
    """`snakemake ARGV` (as typed, in the checkout) with this interpreter's Snakemake."""
    return subprocess.run([sys.executable, "-m", "snakemake", *argv], cwd=checkout,
                          capture_output=True, text=True, env=snakemake_env(), timeout=timeout)
