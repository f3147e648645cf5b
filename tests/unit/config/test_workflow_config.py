"""The workflow's configuration without Snakemake: files merged, the schema (package data) with
its defaults, every check of values that must agree, the time grids, periods and evaluation
months (farside_gan.config.workflow, farside_gan.config.schedule)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from farside_gan.config.schedule import Schedule, split_months
from farside_gan.config.workflow import (ConfigError, config_warnings, fetch_source, load_config,
                                         read_config, schema, validate_config)

REPO = Path(__file__).resolve().parents[3]
REAL_CONFIG = REPO / "config" / "config.yaml"
DEMO_CONFIG = REPO / "config" / "demo.yaml"
BENCHMARK_CONFIG = REPO / "config" / "benchmark.yaml"
MINIMAL = {"start": "2011-01-01T00:00", "end": "2011-01-02T00:00"}


def with_overlay(base: dict, overlay: dict) -> dict:
    from farside_gan.config.workflow import merge
    return merge(copy.deepcopy(base), copy.deepcopy(overlay))


@pytest.fixture(scope="module")
def demo() -> dict:
    return yaml.safe_load(DEMO_CONFIG.read_text())


# ---------------------------------------------------------------- the schema, one file

def test_schema_is_package_data_and_the_workflow_links_to_it():
    from importlib.resources import files
    packaged = files("farside_gan.config").joinpath("schema.yaml")
    assert packaged.is_file()
    linked = REPO / "workflow" / "schemas" / "config.schema.yaml"  # the workflow catalog's place
    assert linked.is_symlink()
    assert linked.resolve() == (REPO / "farside_gan" / "config" / "schema.yaml").resolve()
    assert schema() == yaml.safe_load(linked.read_text())
    assert not (REPO / "config" / "schema.yaml").exists()


def test_the_wheel_holds_the_schema(tmp_path):
    """`pip install .` (not editable) gets the schema: the built wheel holds it (built from a
    copy, with this environment's setuptools: a few seconds)."""
    import shutil
    import subprocess
    import sys
    import zipfile
    pytest.importorskip("setuptools")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "farside_gan", source / "farside_gan",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path / "wheel")],
                   check=True, capture_output=True, timeout=300)
    [wheel] = (tmp_path / "wheel").glob("farside_gan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "farside_gan/config/schema.yaml" in names
    assert "farside_gan/config/workflow.py" in names


def schema_keys(properties: dict, prefix: str = ""):
    """(dotted key, its schema) of every key a configuration may set."""
    for name, spec in properties.items():
        if spec.get("type") == "object" and "properties" in spec:
            yield from schema_keys(spec["properties"], f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", spec


def test_config_readme_describes_every_key():
    """config/README.md (the workflow catalog's place) has a row for every key of the schema."""
    import re
    text = (REPO / "config" / "README.md").read_text()
    described = {key for row in re.findall(r"^\| (`[^|]+) \|", text, re.M)
                 for key in re.findall(r"`([\w.]+)`", row)}
    assert {key for key, _ in schema_keys(schema()["properties"])} <= described


def test_every_description_is_whole():
    """A description in a YAML flow mapping ends at its first unquoted comma, the rest becoming
    keys of the schema that nothing reads: every key of a property is a JSON schema keyword."""
    keywords = {"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "default",
                "description", "enum", "items", "prefixItems", "minItems", "maxItems", "not",
                "$ref", "pattern", "propertyNames", "additionalProperties", "properties"}
    for key, spec in schema_keys(schema()["properties"]):
        assert set(spec) <= keywords, (key, set(spec) - keywords)


# ---------------------------------------------------------------- read, merge, defaults

def test_later_files_override_the_keys_they_name_and_sections_merge(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(
        {"start": "2011-01-01T00:00", "fetch": {"source": "jsoc", "batch": "month"},
         "normalize": {"euv_clip": [1.0, 200.0]}}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(
        {"fetch": {"batch": "day"}, "normalize": {"euv_clip": [2.0, 100.0]}}))
    assert read_config([tmp_path / "a.yaml", tmp_path / "b.yaml"]) == {
        "start": "2011-01-01T00:00", "fetch": {"source": "jsoc", "batch": "day"},
        "normalize": {"euv_clip": [2.0, 100.0]}}  # a list is a value: replaced, not merged


def test_schema_fills_the_published_defaults():
    config = validate_config(copy.deepcopy(MINIMAL))
    assert config["image"] == {"size": 1024, "rsun_px": 450.0, "mask_radius": 0.98, "fill": 0.0}
    assert config["normalize"] == {"euv_median": 100.0, "euv_clip": [1.0, 200.0],
                                   "hmi_clip": 3000.0}
    assert config["dataset"] == {"pair_tolerance": "6m", "seed": 0, "eval_months": 2}
    assert (config["cadence_hours"], config["workdir"]) == (12, "")
    assert config["fetch"]["source"] == "jsoc" and config["fetch"]["batch"] == "month"
    assert config["training"]["epochs"] == 150 and config["training"]["device"] == "auto"
    assert config["farside"] == {"cadence_hours": 24, "spacecraft": {}}


def test_the_demo_is_the_same_configuration_alone_and_over_the_default():
    """Snakemake merges --configfile files over config/config.yaml when run from the repository
    (its `configfile:`); `farside-gan plan` takes the files it is given, so both must agree."""
    assert load_config([REAL_CONFIG, DEMO_CONFIG]) == load_config([DEMO_CONFIG])


def test_the_repository_configurations_are_accepted():
    for path in (REAL_CONFIG, DEMO_CONFIG, BENCHMARK_CONFIG):
        assert load_config([path])["start"] == yaml.safe_load(path.read_text())["start"]


# ---------------------------------------------------------------- refusals, naming the key

@pytest.mark.parametrize("overlay, key, words", [
    ({"fetch": {"source": "ftp"}}, "fetch.source", ["fetch.source: 'ftp' is not one of"]),
    ({"image": {"size": "big"}}, "image.size", ["'big' is not of type 'integer'"]),
    ({"training": {"epoch": 3}}, "training", ["'epoch' was unexpected"]),
    ({"synchronic": {"ensemble_members": 1}}, "synchronic.ensemble_members", ["should not be"]),
    ({"training": {"loader": "x; touch INJECTED #"}}, "training.loader", ["is not one of"]),
])
def test_schema_violations_name_the_key(overlay, key, words):
    with pytest.raises(ConfigError) as info:
        validate_config(with_overlay(MINIMAL, overlay))
    assert info.value.key == key
    for word in words:
        assert word in str(info.value)


def test_a_missing_required_key_is_named():
    with pytest.raises(ConfigError) as info:
        validate_config({"end": "2011-01-02T00:00"})
    assert info.value.key == "start" and "'start' is a required property" in str(info.value)


@pytest.mark.parametrize("overlay, key, words", [
    ({"normalize": {"euv_clip": [200, 1]}}, "normalize.euv_clip",
     ["normalize.euv_clip [200, 1] must be increasing"]),
    ({"normalize": {"euv_clip": [5, 5]}}, "normalize.euv_clip", ["must be increasing"]),
    ({"image": {"size": 64, "rsun_px": 40}}, "image.rsun_px",
     ["image.rsun_px 40 puts the solar disk outside the 64 px image"]),
    ({"end": "2011-01-29T00:00"}, "end",
     ["end 2011-01-29T00:00 is before start 2011-01-30T00:00"]),
    ({"farside": {"spacecraft": {"euvi_b": {"start": "2011-01-31T00:00",
                                            "end": "2011-01-30T00:00"}}}},
     "farside.spacecraft.euvi_b.end", ["farside.spacecraft.euvi_b.end 2011-01-30T00:00 is before"]),
    ({"fetch": {"archive": ""}}, "fetch.archive",
     ["fetch.archive must name the archive for source local"]),
    ({"fetch": {"source": "jsoc", "euvi_source": "http", "archive": ""}}, "fetch.archive",
     ["for source http"]),
    ({"training": {"epochs": 5, "epoch_decay": 6}}, "model/training",
     ["model/training: epoch_decay (6) exceeds epochs (5)"]),
    ({"synchronic": {"ensemble_members": 3}}, "synchronic.ensemble_members",
     ["synchronic.ensemble_members 3 needs 2 checkpoints", "training keeps 0",
      "keep_every_epochs 10"]),
    ({"synchronic": {"ensemble_members": 2}, "training": {"keep_every_epochs": 4},
      "dataset": {"eval_months": 0}}, "synchronic.calibrate_uncertainty",
     ["synchronic.calibrate_uncertainty needs near-side maps of an evaluation month"]),
])
def test_values_that_must_agree_are_refused_naming_the_key(demo, overlay, key, words):
    with pytest.raises(ConfigError) as info:
        validate_config(with_overlay(demo, overlay))
    assert info.value.key == key
    assert str(info.value) == f"config: {info.value.message}"
    for word in words:
        assert word in info.value.message


@pytest.mark.parametrize("overlay", [
    {"image": {"size": 64, "rsun_px": 32}},                      # the disk touches the edge
    {"end": "2011-01-30T00:00"},                                 # one time: end == start
    {"synchronic": {"ensemble_members": 3}, "training": {"keep_every_epochs": 4}},  # 9 // 4
    {"synchronic": {"ensemble_members": 2, "calibrate_uncertainty": False},
     "training": {"keep_every_epochs": 4}, "dataset": {"eval_months": 0}},
])
def test_values_at_the_limits_are_accepted(demo, overlay):
    validate_config(with_overlay(demo, overlay))


def test_an_archive_source_nothing_reads_from_needs_no_archive():
    """euvi_source local without an archive, and no STEREO range: no EUVI is fetched."""
    config = validate_config(with_overlay(MINIMAL, {"fetch": {"source": "fido",
                                                              "euvi_source": "local"}}))
    assert config["fetch"]["archive"] == "" and Schedule(config).instruments == ("aia", "hmi")


def test_a_refusal_of_files_names_them(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("normalize: {euv_clip: [200, 1]}\n")
    with pytest.raises(ConfigError) as info:
        load_config([DEMO_CONFIG, bad])
    assert str(info.value).startswith(f"{DEMO_CONFIG}, {bad}: normalize.euv_clip [200, 1]")
    bad.write_text("[1, 2]\n")
    with pytest.raises(ConfigError, match=f"^{bad}: holds a YAML list .* not a configuration of "
                       "keys and values$"):
        load_config([bad])


def test_jsoc_without_an_address_is_a_warning_not_a_refusal():
    config = load_config([REAL_CONFIG])
    [warning] = config_warnings(config)
    assert "fetch.jsoc_email is empty" in warning
    config["fetch"]["jsoc_email"] = "you@example.org"
    assert config_warnings(config) == []
    assert config_warnings(load_config([DEMO_CONFIG])) == []  # local archive


def test_fetch_source_is_the_archive_for_local_and_http(demo):
    config = validate_config(copy.deepcopy(demo))
    assert fetch_source(config, "aia") == fetch_source(config, "euvi_b") == "data/archive"
    config = load_config([REAL_CONFIG])
    assert (fetch_source(config, "hmi"), fetch_source(config, "euvi_a")) == ("jsoc", "fido")


# ---------------------------------------------------------------- the calendar

def test_published_times_periods_and_evaluation_months():
    schedule = Schedule(load_config([REAL_CONFIG]))
    days = 365 * 7 + 2                                    # 2011-2017, two leap years
    aia = schedule.times("aia")
    assert len(aia) == 2 * days and aia[:3] == ["20110101T0000", "20110101T1200", "20110102T0000"]
    assert aia[-1] == "20171231T1200" and schedule.times("hmi") == aia
    assert len(schedule.times("euvi_a")) == days
    assert schedule.times("euvi_b")[-1] == "20140930T0000" and len(schedule.times("euvi_b")) == 1369
    assert schedule.instruments == ("aia", "hmi", "euvi_a", "euvi_b")
    assert schedule.periods("aia") == [f"{y}{m:02d}" for y in range(2011, 2018)
                                       for m in range(1, 13)]
    assert len(schedule.periods("euvi_b")) == 45                         # 2011-01 .. 2014-09
    assert schedule.times_in("hmi", "201102") == aia[2 * 31:2 * 59]      # February 2011
    # the split is seeded per year: with seed 0, 2011 evaluates February (config/demo.yaml) and
    # 2012 September and December (config/benchmark.yaml)
    assert 2 in schedule.eval_months[2011] and schedule.eval_months[2012] == (9, 12)
    assert len(schedule.eval_periods) == 7 * 2
    assert {"201209", "201212"} <= set(schedule.eval_periods)


@pytest.mark.parametrize("batch, periods, first", [
    ("day", 2557, ["20110101T0000", "20110101T1200"]),
    ("time", 5114, ["20110101T0000"]),
])
def test_finer_batches_make_finer_periods(batch, periods, first):
    config = load_config([REAL_CONFIG])
    config["fetch"]["batch"] = batch
    schedule = Schedule(config)
    assert len(schedule.periods("aia")) == periods
    assert schedule.times_in("aia", schedule.periods("aia")[0]) == first
    assert schedule.period_of("20110101T1200") == "20110101T1200"[:{"day": 8, "time": 13}[batch]]


def test_time_grid_is_inclusive_at_any_cadence(demo):
    config = validate_config(with_overlay(demo, {
        "start": "2011-01-30T00:00", "end": "2011-01-30T01:00", "cadence_hours": 0.5,
        "farside": {"spacecraft": {"euvi_b": {"start": "2011-01-30T00:00",
                                              "end": "2011-02-01T23:00"}}}}))
    schedule = Schedule(config)
    assert schedule.times("aia") == ["20110130T0000", "20110130T0030", "20110130T0100"]
    assert schedule.times("euvi_b") == ["20110130T0000", "20110131T0000", "20110201T0000"]
    assert schedule.spans == [(("aia", "hmi"), "2011-01-30T00:00", "2011-01-30T01:00", 0.5),
                              (("euvi_a",), "2011-01-31T00:00", "2011-01-31T00:00", 24),
                              (("euvi_b",), "2011-01-30T00:00", "2011-02-01T23:00", 24)]


def test_the_manifest_splits_with_the_same_months():
    from farside_gan.prepare import manifest
    assert manifest.split_months is split_months  # one split: planned and applied alike
