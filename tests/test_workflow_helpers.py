"""Running the workflow from tests: Snakemake in a subprocess on a scratch directory.

No tests here; test_workflow.py, test_rules.py and test_profiles.py share these helpers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflow" / "Snakefile"
REAL_CONFIG = REPO / "config" / "config.yaml"
DEMO_CONFIG = REPO / "config" / "demo.yaml"


def snakemake_env() -> dict:
    """This interpreter's bin first on PATH (rules run `python -m farside_gan`), one BLAS thread."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_snakemake(workdir: Path, *args, configfiles=(), check: bool = True,
                  timeout: float = 900) -> subprocess.CompletedProcess:
    """`snakemake --snakefile workflow/Snakefile ARGS --configfile ...`, run from WORKDIR.

    No --directory: it would override the config's `workdir` (the run directory), as it does
    for a user who gives one."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE)]
    cmd += [str(a) for a in args]
    if configfiles:  # last: --configfile takes every word after it
        cmd += ["--configfile", *map(str, configfiles)]
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
