"""`farside-gan plan` refuses every configuration `snakemake -n` refuses, with the same words
naming the same key: both check it with farside_gan.config.workflow. And what the library fills
in is what Snakemake's own schema validation fills in."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from helpers.workflow import DEMO_CONFIG, REAL_CONFIG, REPO, run_snakemake, write_config

BENCHMARK_CONFIG = REPO / "config" / "benchmark.yaml"

# (a configuration merged over the demo's, the key it gets wrong): each check of values that
# must agree, and schema violations of each kind
BAD = {
    "clip_order": ({"normalize": {"euv_clip": [200, 1]}}, "normalize.euv_clip"),
    "disk_outside": ({"image": {"size": 64, "rsun_px": 40}}, "image.rsun_px"),
    "end_first": ({"end": "2011-01-29T00:00"}, "end"),
    "farside_end_first": ({"farside": {"spacecraft": {"euvi_a": {
        "start": "2011-01-31T00:00", "end": "2011-01-30T00:00"}}}},
                          "farside.spacecraft.euvi_a.end"),
    "no_archive": ({"fetch": {"archive": ""}}, "fetch.archive"),
    "decay_after_end": ({"training": {"epochs": 5, "epoch_decay": 6}}, "model/training"),
    "ensemble_unkept": ({"synchronic": {"ensemble_members": 3}}, "synchronic.ensemble_members"),
    "calibration_unevaluated": ({"synchronic": {"ensemble_members": 2},
                                 "training": {"keep_every_epochs": 4},
                                 "dataset": {"eval_months": 0}},
                                "synchronic.calibrate_uncertainty"),
    "enum": ({"fetch": {"source": "ftp"}}, "fetch.source"),
    "type": ({"image": {"size": "big"}}, "image.size"),
    "unknown_key": ({"training": {"epoch": 3}}, "training"),
    "bound": ({"dataset": {"eval_months": 12}}, "dataset.eval_months"),
}


def refusal(output: str, prefix: str) -> str:
    """The one line of ``output`` that starts with ``prefix`` (the refusal's message)."""
    [line] = [line for line in output.splitlines() if line.startswith(prefix)]
    return line[len(prefix):]


@pytest.mark.parametrize("name", BAD)
def test_plan_and_snakemake_refuse_alike(tmp_path, capsys, name):
    from farside_gan.cli import main
    from farside_gan.config.workflow import ConfigError, load_config

    overlay, key = BAD[name]
    bad = write_config(tmp_path / f"{name}.yaml", overlay)
    with pytest.raises(ConfigError) as info:
        load_config([DEMO_CONFIG, bad])
    assert info.value.key == key and key in info.value.message
    assert main(["plan", str(DEMO_CONFIG), str(bad)]) == 1
    planned = refusal(capsys.readouterr().err, f"farside-gan plan: error: {DEMO_CONFIG}, {bad}: ")
    proc = run_snakemake(tmp_path, "-n", configfiles=[DEMO_CONFIG, bad], check=False)
    assert proc.returncode != 0
    snakemade = refusal(proc.stdout + proc.stderr, "config: ")
    assert planned == snakemade == info.value.message
    assert not (tmp_path / "runs").exists()  # refused before the run directory is made


def test_a_configuration_without_start_is_refused_alike(tmp_path, capsys):
    from farside_gan.cli import main

    bad = write_config(tmp_path / "no_start.yaml", {"end": "2011-01-02T00:00"})
    assert main(["plan", str(bad)]) == 1
    planned = refusal(capsys.readouterr().err, f"farside-gan plan: error: {bad}: ")
    proc = run_snakemake(tmp_path, "-n", configfiles=[bad], check=False)
    assert proc.returncode != 0
    assert planned == refusal(proc.stdout + proc.stderr, "config: ")
    assert re.fullmatch(r"\(top level\): 'start' is a required property", planned)


@pytest.mark.parametrize("path", [REAL_CONFIG, DEMO_CONFIG, BENCHMARK_CONFIG])
def test_defaults_are_snakemakes(path):
    """The library fills in the schema's defaults as snakemake.utils.validate does with the same
    schema (the workflow catalog's workflow/schemas/config.schema.yaml)."""
    from snakemake.utils import validate

    from farside_gan.config.workflow import validate_config
    config = yaml.safe_load(path.read_text())
    snakemakes = copy.deepcopy(config)
    validate(snakemakes, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    assert validate_config(config) == snakemakes
