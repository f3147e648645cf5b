"""JSOC exports through the real drms client against a fake JSOC on 127.0.0.1: one export per
instrument and month, split when too large, resumed after an interruption, backoff on 429/503
and "too many requests"; Fido asks JSOC for hmi.M_720s and never yields 45-second magnetograms."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from farside_gan.acquire.download import DownloadError, fetch_observation, fetch_period
from farside_gan.acquire.jsoc import EXPORT_STATE, grid_record_set, time_selector
from farside_gan.core.fitsio import read_fits

EMAIL = "me@example.org"
#: Two times in January, one in February: one export per instrument and month means two each.
TIMES = [datetime(2011, 1, 31, 0), datetime(2011, 1, 31, 12), datetime(2011, 2, 1, 0)]
FLAGGED = datetime(2011, 1, 31, 12)        # the HMI record of this slot has a QUALITY flag...
CLEAN_NEXT = datetime(2011, 1, 31, 12, 12)  # ...and the next 720 s slot is clean
M45 = datetime(2011, 2, 1, 12)              # an HMI file that is a 45-second magnetogram
FAST = {"retries": 2, "backoff": 0.01, "poll_s": 0.01, "busy_wait_s": 0.01}


@pytest.fixture(scope="session")
def jsoc_archive(tmp_path_factory, synthetic_sun):
    """AIA and HMI at TIMES (32 px), with a flagged HMI record at FLAGGED and a clean one 12
    minutes later, and a CADENCE = 45 HMI file at M45."""
    from farside_gan.synthetic.archive import (build_archive, catalog_row, plan_observation,
                                               write_catalog, write_plan)

    root = tmp_path_factory.mktemp("jsoc_archive")
    rows = {r["path"]: r for r in build_archive(root, TIMES, instruments=("aia", "hmi"), size=32,
                                                sun=synthetic_sun)}
    for time, overrides, header in ((FLAGGED, {"quality": 0x400}, None), (CLEAN_NEXT, {}, None),
                                    (M45, {}, {"CADENCE": 45.0})):
        plan = plan_observation("hmi", "magnetogram", time, size=32, **overrides)
        write_plan(root / plan.relpath, plan, synthetic_sun, header_overrides=header)
        rows[plan.relpath] = catalog_row(root, plan)
    write_catalog(root, list(rows.values()))
    return root


@pytest.fixture
def jsoc(jsoc_archive):
    from farside_gan.testing.fake_jsoc import JsocServer

    with JsocServer(jsoc_archive, emails={EMAIL}) as server:
        yield server


def period(jsoc, instrument, out, **kw):
    return fetch_period("jsoc", instrument, TIMES, out, jsoc_email=EMAIL, jsoc_url=jsoc.url,
                        **{**FAST, **kw})


def test_published_grid_is_one_record_set_per_instrument_month():
    from farside_gan.acquire.download import times_at_cadence

    january = times_at_cadence("2011-01-01T00:00", "2011-01-31T12:00", "12h")
    assert grid_record_set("aia", january, (304, 193, 171)) == \
        "aia.lev1_euv_12s[2011.01.01_00:00:00_UTC/31d@12h][304,193,171]{image}"
    assert grid_record_set("hmi", january, ("magnetogram",)) == \
        "hmi.M_720s[2011.01.01_00:00:00_UTC/31d@12h]{magnetogram}"
    assert time_selector([datetime(2011, 2, 1), datetime(2011, 2, 3)]) == "2011.02.01_00:00:00_UTC/4d@2d"
    assert time_selector([datetime(2011, 2, 1), datetime(2011, 2, 2), datetime(2011, 2, 4)]) == \
        "2011.02.01_00:00:00_UTC,2011.02.02_00:00:00_UTC,2011.02.04_00:00:00_UTC"


def test_one_export_per_instrument_month_and_a_flagged_slot_is_replaced(jsoc, tmp_path):
    aia = period(jsoc, "aia", tmp_path / "aia", index=tmp_path / "aia" / "records.json")
    hmi = period(jsoc, "hmi", tmp_path / "hmi", index=tmp_path / "hmi" / "records.json")
    exports = [r["ds"] for r in jsoc.ops("exp_request")]
    assert exports == [
        "aia.lev1_euv_12s[2011.01.31_00:00:00_UTC/1d@12h][304,193,171]{image}",
        "aia.lev1_euv_12s[2011.02.01_00:00:00_UTC][304,193,171]{image}",
        # the 12:00 slot is flagged: its clean neighbour goes into the same request
        "hmi.M_720s[2011.01.31_00:00:00_TAI,2011.01.31_12:12:00_TAI]{magnetogram}",
        "hmi.M_720s[2011.02.01_00:00:00_UTC]{magnetogram}",
    ]
    assert [r["status"] for r in aia + hmi] == ["ok"] * 12
    assert {r["series"] for r in aia} == {"aia.lev1_euv_12s"} and {r["series"] for r in hmi} == {"hmi.M_720s"}
    flagged = hmi[1]
    assert flagged["requested_time"] == "2011-01-31T12:00:00"
    assert flagged["source_file"] == "hmi.M_720s[2011.01.31_12:12:00_TAI][2]{magnetogram}"
    assert flagged["export_id"] == jsoc.ops("exp_request")[2]["requestid"]
    _, header = read_fits(tmp_path / "hmi" / "magnetogram" / "20110131T1200" / "frame.fits")
    assert header["T_REC"] == "2011.01.31_12:12:00_TAI" and header["QUALITY"] == 0
    index = json.loads((tmp_path / "aia" / "records.json").read_text())
    assert index["series"] == "aia.lev1_euv_12s" and index["counts"] == {"ok": 9}
    assert [r["dir"] for r in index["records"][:3]] == ["304/20110131T0000", "193/20110131T0000",
                                                       "171/20110131T0000"]
    # a rerun (e.g. after the time grid changed) keeps every verified frame: no export at all
    again = period(jsoc, "aia", tmp_path / "aia")
    assert [r["action"] for r in again] == ["kept"] * 9 and len(jsoc.ops("exp_request")) == 4


def test_too_large_export_is_split_until_accepted(jsoc_archive, tmp_path):
    from farside_gan.testing.fake_jsoc import JsocServer

    with JsocServer(jsoc_archive, emails={EMAIL}, max_records=4) as jsoc:
        records = fetch_period("jsoc", "aia", TIMES[:2], tmp_path, jsoc_email=EMAIL, jsoc_url=jsoc.url, **FAST)
    answers = [(r["ds"], r["jsoc_status"]) for r in jsoc.ops("exp_request")]
    assert answers == [
        ("aia.lev1_euv_12s[2011.01.31_00:00:00_UTC/1d@12h][304,193,171]{image}", 3),   # 6 records: too large
        ("aia.lev1_euv_12s[2011.01.31_00:00:00_UTC][304,193,171]{image}", 2),
        ("aia.lev1_euv_12s[2011.01.31_12:00:00_UTC][304,193,171]{image}", 2),
    ]
    assert [r["status"] for r in records] == ["ok"] * 6


def test_interrupted_export_resumes_its_id_and_partial_files(jsoc, tmp_path):
    jsoc.inject_fault("SUM*/*.fits", "drop", count=1000)   # every file transfer breaks off half way
    with pytest.raises(DownloadError, match="6 of 6 frames not fetched"):
        fetch_period("jsoc", "aia", TIMES[:2], tmp_path, jsoc_email=EMAIL, jsoc_url=jsoc.url,
                     **{**FAST, "retries": 1})
    state = json.loads((tmp_path / EXPORT_STATE).read_text())
    [export_id] = [e["id"] for e in state["exports"]]
    partials = {p.parent.relative_to(tmp_path).as_posix(): p.stat().st_size
                for p in tmp_path.glob("*/*/.frame.fits.part")}
    assert len(partials) == 6 and all(size > 0 for size in partials.values())
    assert not list(tmp_path.glob("*/*/frame.fits")) and not (tmp_path / "records.json").exists()

    jsoc.reset()
    records = fetch_period("jsoc", "aia", TIMES[:2], tmp_path, jsoc_email=EMAIL, jsoc_url=jsoc.url, **FAST)
    assert [r["status"] for r in records] == ["ok"] * 6
    assert jsoc.ops("exp_request") == []                     # not requested again...
    assert {r["requestid"] for r in jsoc.ops("exp_status")} == {export_id}   # ...its staged files used
    gets = [r for r in jsoc.requests if r["path"].startswith("/SUM")]
    assert len(gets) == 6 and all(r["status"] == 206 for r in gets)
    for record in records:
        d = f"{record['channel']}/{datetime.fromisoformat(record['requested_time']):%Y%m%dT%H%M}"
        assert record["export_id"] == export_id
        assert [g["range"] for g in gets if g["path"].endswith(f".{record['channel']}.image_lev1.fits")
                and f"T{d[-4:]}" in g["path"]] == [f"bytes={partials[d]}-"]
    assert not list(tmp_path.glob("*/*/.frame.fits.part*")) and not (tmp_path / EXPORT_STATE).exists()


def test_an_expired_export_is_requested_again(jsoc, tmp_path):
    jsoc.inject_fault("SUM*/*.fits", "503", count=1000)
    with pytest.raises(DownloadError):
        fetch_period("jsoc", "hmi", TIMES[2:], tmp_path, jsoc_email=EMAIL, jsoc_url=jsoc.url,
                     **{**FAST, "retries": 0})
    [first] = [r["requestid"] for r in jsoc.ops("exp_request")]
    jsoc.reset()
    jsoc.expire(first)
    [record] = fetch_period("jsoc", "hmi", TIMES[2:], tmp_path, jsoc_email=EMAIL, jsoc_url=jsoc.url, **FAST)
    [second] = [r["requestid"] for r in jsoc.ops("exp_request")]
    assert record["status"] == "ok" and record["export_id"] == second != first
    assert not (tmp_path / EXPORT_STATE).exists()   # every frame in: nothing left to resume


def test_backoff_on_429_503_and_too_many_requests(jsoc, tmp_path, monkeypatch):
    import farside_gan.acquire.transfer as transfer

    slept = []
    monkeypatch.setattr(transfer, "_sleep", slept.append)
    jsoc.retry_after = 3
    jsoc.inject_fault("jsoc_fetch/exp_request", "429", count=1)
    jsoc.busy = 1                                   # then: status 7, "1 pending export requests"
    jsoc.inject_fault("SUM*/*.fits", "503", count=1)
    [record] = fetch_period("jsoc", "hmi", TIMES[2:], tmp_path, jsoc_email=EMAIL, jsoc_url=jsoc.url,
                            **{**FAST, "busy_wait_s": 30})
    assert record["status"] == "ok"
    answers = [(r["status"], r.get("jsoc_status")) for r in jsoc.requests if r.get("op") == "exp_request"
               or r["status"] == 429]
    assert answers == [(429, None), (200, 7), (200, 2)]
    assert slept == [3, 30, 3]   # Retry-After of the 429, JSOC's busy wait, Retry-After of the 503


def test_jsoc_single_frame_prefers_the_clean_record(jsoc, tmp_path):
    record = fetch_observation("jsoc", "hmi", "magnetogram", "2011-01-31T12:02", "1h", tmp_path,
                               jsoc_email=EMAIL, jsoc_url=jsoc.url, **FAST)
    assert record["status"] == "ok" and record["series"] == "hmi.M_720s"
    assert record["source_file"] == "hmi.M_720s[2011.01.31_12:12:00_TAI][2]{magnetogram}"
    [query] = [r["ds"] for r in jsoc.ops("rs_list")]
    assert query == "hmi.M_720s[2011.01.31_11:02:00_UTC-2011.01.31_13:02:00_UTC]"
    assert [r["ds"] for r in jsoc.ops("exp_request")] == ["hmi.M_720s[2011.01.31_12:12:00_TAI]{magnetogram}"]


def test_unregistered_address_is_a_clear_error(jsoc, tmp_path):
    with pytest.raises(DownloadError, match="not a JSOC-registered export address"):
        fetch_period("jsoc", "aia", TIMES, tmp_path, jsoc_email="nobody@example.org", jsoc_url=jsoc.url, **FAST)


# -- Fido: AIA/HMI by JSOC series through sunpy's JSOC client

@pytest.fixture
def fido_jsoc(jsoc, monkeypatch):
    """sunpy's JSOC client (drms' registered 'jsoc' server) pointed at the fake; the VSO refuses."""
    import drms.config
    from sunpy.net.vso import VSOClient

    monkeypatch.setitem(drms.config._server_configs, "jsoc", jsoc.server_config())

    def no_vso(*args, **kwargs):
        raise AssertionError("the VSO was asked for AIA/HMI")

    monkeypatch.setattr(VSOClient, "search", no_vso)
    return jsoc


def test_fido_hmi_is_hmi_M_720s_never_the_45_second_series(fido_jsoc, tmp_path):
    record = fetch_observation("fido", "hmi", "magnetogram", "2011-01-31T00:00", "1h", tmp_path / "ok",
                               jsoc_email=EMAIL, **FAST)
    assert record["status"] == "ok" and record["series"] == "hmi.M_720s" and record["source"] == "fido"
    assert record["source_file"] == "hmi.M_720s[2011.01.31_00:00:00_TAI][2]{magnetogram}"
    assert read_fits(tmp_path / "ok" / "frame.fits")[1]["CADENCE"] == 720
    asked = [r["ds"] for r in fido_jsoc.requests if r.get("op") in ("rs_list", "exp_request")]
    assert asked and all(ds.startswith("hmi.M_720s[") for ds in asked)
    # a file that turns out to be a 45-second magnetogram is refused, whatever the source said
    dropped = fetch_observation("fido", "hmi", "magnetogram", M45, "10m", tmp_path / "m45",
                                jsoc_email=EMAIL, **FAST)
    assert dropped["status"] == "dropped" and dropped["reason"] == "wrong_series"
    assert "CADENCE = 45 s" in dropped["detail"] and not (tmp_path / "m45" / "frame.fits").exists()


def test_fido_without_the_jsoc_address_refuses_aia_and_hmi(tmp_path):
    with pytest.raises(DownloadError, match="45-second"):
        fetch_observation("fido", "hmi", "magnetogram", "2011-01-31T00:00", "1h", tmp_path)


def test_fido_aia_is_asked_of_jsoc_by_series_and_wavelength(fido_jsoc, tmp_path):
    record = fetch_observation("fido", "aia", 193, "2011-02-01T00:00", "1h", tmp_path, jsoc_email=EMAIL, **FAST)
    assert record["status"] == "ok" and record["series"] == "aia.lev1_euv_12s"
    assert read_fits(tmp_path / "frame.fits")[1]["WAVELNTH"] == 193
    assert [r["ds"] for r in fido_jsoc.ops("exp_request")] == \
        ["aia.lev1_euv_12s[2011-02-01T00:00:06Z][193]{image}"]


def test_a_period_index_never_mixes_series(tmp_path):
    from farside_gan.acquire.records import write_index

    records = [{"series": "hmi.M_720s", "channel": "magnetogram", "requested_time": "2011-01-01T00:00:00",
                "status": "ok"},
               {"series": "hmi.M_45s", "channel": "magnetogram", "requested_time": "2011-01-01T12:00:00",
                "status": "ok"}]
    with pytest.raises(ValueError, match="M_45s"):
        write_index(tmp_path / "records.json", "hmi", "hmi.M_720s", "fido", tmp_path, records)
    assert not (tmp_path / "records.json").exists()
