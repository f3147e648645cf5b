"""farside-gan plan: what the published configuration fetches and stores."""

from __future__ import annotations

import json
import math

import pytest
from helpers import REPO


@pytest.fixture(scope="module")
def published():
    from farside_gan.config.workflow import load_config
    from farside_gan.plan import plan_fetch
    return plan_fetch(load_config([REPO / "config" / "config.yaml"]))


def fits_size(data_bytes, header_blocks=8):
    return header_blocks * 2880 + math.ceil(data_bytes / 2880) * 2880


def test_published_configuration_frames_and_one_export_per_instrument_month(published):
    days = 365 * 7 + 2                                       # 2011-2017 (2012 and 2016 are leap years)
    aia, hmi = published["instruments"]["aia"], published["instruments"]["hmi"]
    assert aia["times"] == hmi["times"] == 2 * days == 5114    # 00 and 12 UT
    assert (aia["frames"], hmi["frames"]) == (3 * 5114, 5114)
    assert aia["export_requests"] == hmi["export_requests"] == aia["fetch_jobs"] == 7 * 12
    euvi_a, euvi_b = published["instruments"]["euvi_a"], published["instruments"]["euvi_b"]
    assert (euvi_a["times"], euvi_b["times"]) == (days, 1369)  # STEREO-B to 2014-09-30, daily
    assert euvi_a["export_requests"] == 0                      # the VSO stages nothing
    assert published["totals"]["frames"] == 3 * 5114 + 5114 + 3 * days + 3 * 1369 == 32234
    assert published["totals"]["export_requests"] == 168


def test_published_configuration_bytes(published):
    aia, hmi = published["instruments"]["aia"], published["instruments"]["hmi"]
    assert aia["raw_bytes"] == 3 * 5114 * fits_size(4096 * 4096 * 2)   # level 1, int16
    assert hmi["raw_bytes"] == 5114 * fits_size(4096 * 4096 * 4)       # int32
    plane, stack = fits_size(4 * 1024 ** 2), fits_size(3 * 4 * 1024 ** 2)
    assert aia["prepared_bytes"] == 5114 * (3 * plane + stack)         # aligned channels + stack
    assert hmi["prepared_bytes"] == 5114 * (plane + plane)             # aligned + normalized target
    final = published["final"]
    assert final["generator_bytes"] == 4 * 45_617_729                  # DESIGN.md's parameter count
    assert final["checkpoint_bytes"] == 4 * 3 * (45_617_729 + 5_531_522)
    assert final["checkpoints_kept"] == 1 + 150 // 10
    assert published["totals"]["disk_bytes"] == (published["totals"]["raw_bytes"]
                                                 + published["totals"]["prepared_bytes"] + final["total_bytes"])


def test_finer_fetch_jobs_mean_finer_exports(tmp_path):
    from farside_gan.config.workflow import load_config
    from farside_gan.plan import plan_fetch

    (tmp_path / "day.yaml").write_text("fetch: {batch: day, source: fido, jsoc_email: a@b.c}\n")
    plan = plan_fetch(load_config([REPO / "config" / "config.yaml", tmp_path / "day.yaml"]))
    assert plan["instruments"]["aia"]["fetch_jobs"] == 2557
    assert plan["instruments"]["aia"]["export_requests"] == 3 * 5114   # fido: one per frame
    (tmp_path / "jsoc_day.yaml").write_text("fetch: {batch: day}\n")
    plan = plan_fetch(load_config([REPO / "config" / "config.yaml", tmp_path / "jsoc_day.yaml"]))
    assert plan["instruments"]["hmi"]["export_requests"] == 2557       # one per day job


def test_cli_plan_prints_the_table_and_json(capsys):
    from farside_gan.cli import main

    assert main(["plan", str(REPO / "config" / "config.yaml")]) == 0
    text = capsys.readouterr().out
    assert "aia        jsoc     5114   15342    84      84" in text and "total" in text
    assert main(["plan", str(REPO / "config" / "config.yaml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["export_requests"] == 168


def test_cli_plan_refuses_an_invalid_configuration(tmp_path, capsys):
    from farside_gan.cli import main

    (tmp_path / "bad.yaml").write_text("start: '2011-01-01T00:00'\nend: '2011-02-01T00:00'\nfetch: {source: ftp}\n")
    assert main(["plan", str(tmp_path / "bad.yaml")]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "'ftp' is not one of" in err and "fetch.source" in err
