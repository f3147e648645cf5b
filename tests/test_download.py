"""download: nearest frame within tolerance from the local and 127.0.0.1 HTTP archives, with
injected faults (503 retried, dropped connection leaves no partial file, truncation refetched),
no-data and bad-file records; the Fido/JSOC query builders."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta

import pytest

from farside_gan.download import (DownloadError, HttpArchive, JsocSource, FidoSource,
                                  fetch_observation, open_source, parse_duration,
                                  times_at_cadence)
from farside_gan.fitsio import read_fits

T0 = datetime(2011, 1, 1)
FAST = {"retries": 3, "backoff": 0.01}


def files_in(directory):
    return sorted(p.name for p in directory.iterdir())


def test_parse_duration_and_cadence():
    assert parse_duration("6m") == timedelta(minutes=6)
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("90") == timedelta(seconds=90)
    with pytest.raises(ValueError):
        parse_duration("soon")
    assert times_at_cadence("2011-01-01", "2011-01-02T00:00", "12h") == [
        T0, T0 + timedelta(hours=12), T0 + timedelta(hours=24)]


def test_local_archive_fetches_nearest_frame(synthetic_archive, tmp_path):
    record = fetch_observation(str(synthetic_archive), "aia", 193, "2011-01-01T12:20", "1h", tmp_path, **FAST)
    assert record["status"] == "ok", record
    assert files_in(tmp_path) == ["frame.fits", "record.json"]
    data, header = read_fits(tmp_path / "frame.fits")
    assert header["WAVELNTH"] == 193 and data.shape == (128, 128)
    obs = datetime.fromisoformat(record["obs_time"])
    assert abs(obs - datetime(2011, 1, 1, 12)) < timedelta(seconds=30)
    assert json.loads((tmp_path / "record.json").read_text()) == record
    # the raw file is delivered unmodified
    assert (tmp_path / "frame.fits").read_bytes() == (synthetic_archive / record["source_file"]).read_bytes()


def test_no_data_within_tolerance_is_a_record_not_a_crash(synthetic_archive, tmp_path):
    record = fetch_observation(str(synthetic_archive), "hmi", "magnetogram", "2011-01-03T00:00", "1h",
                               tmp_path, **FAST)
    assert record["status"] == "dropped" and record["reason"] == "no_data"
    assert "no observation within 1:00:00" in record["detail"]
    assert files_in(tmp_path) == ["record.json"]


def test_http_archive_fetch_and_503_is_retried(http_archive, tmp_path):
    http_archive.inject_fault("hmi/*", "503", count=2)
    record = fetch_observation(http_archive.url, "hmi", "magnetogram", "2011-01-01T00:00", "1h",
                               tmp_path, **FAST)
    assert record["status"] == "ok", record
    statuses = [r[3] if isinstance(r, tuple) else r["status"] for r in http_archive.requests
                if "hmi" in str(r)]
    assert statuses.count(503) == 2 and statuses[-1] == 200
    data, header = read_fits(tmp_path / "frame.fits")
    assert header["CONTENT"] == "MAGNETOGRAM"


def test_dropped_connection_leaves_no_partial_file(http_archive, tmp_path):
    http_archive.inject_fault("aia/*.304.*", "drop", count=10)
    with pytest.raises(DownloadError, match="failed after 4 attempts"):
        fetch_observation(http_archive.url, "aia", 304, "2011-01-01T00:00", "1h", tmp_path, **FAST)
    assert not (tmp_path / "frame.fits").exists()
    assert [p for p in tmp_path.iterdir() if p.name != "record.json"] == []  # no temp left over


def test_drop_then_success_and_truncation_is_refetched(http_archive, tmp_path):
    http_archive.inject_fault("aia/*.171.*", "drop", count=1)
    http_archive.inject_fault("euvi*", "truncate", count=1)  # no match: must not matter
    record = fetch_observation(http_archive.url, "aia", 171, "2011-01-01T00:00", "1h", tmp_path / "a", **FAST)
    assert record["status"] == "ok"
    http_archive.inject_fault("secchi/*", "truncate", count=2)
    record = fetch_observation(http_archive.url, "euvi_a", 195, "2011-01-01T00:00", "1h", tmp_path / "b", **FAST)
    assert record["status"] == "ok", record
    data, header = read_fits(tmp_path / "b" / "frame.fits")
    assert header["WAVELNTH"] == 195 and header["OBSRVTRY"] == "STEREO_A"
    truncated = [r for r in http_archive.requests if "truncate" in str(r)]
    assert len(truncated) == 2


def test_bad_file_in_archive_is_recorded_with_reason(bad_files, tmp_path):
    """An archive whose files are bad: each is a 'dropped' record naming the file and the reason."""
    from farside_gan.synthetic.archive import sha256_of, write_catalog
    from farside_gan.synthetic.badfiles import BAD_FILES
    from farside_gan.layout import Observation, archive_relpath

    root = tmp_path / "archive"
    rows = []
    for defect, path in bad_files.items():
        instrument, channel, time, _ = BAD_FILES[defect]
        rel = archive_relpath(Observation(instrument, channel, time))
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / rel)
        rows.append({"instrument": instrument, "channel": channel, "time": time.isoformat(),
                     "path": rel, "size": (root / rel).stat().st_size, "sha256": sha256_of(root / rel)})
    write_catalog(root, rows)
    for defect, (instrument, channel, time, reason) in BAD_FILES.items():
        out = tmp_path / defect
        record = fetch_observation(str(root), instrument, channel, time, "10m", out, **FAST)
        assert record["status"] == "dropped" and record["reason"] == reason, (defect, record)
        assert record["source_file"] in record["detail"]
        assert files_in(out) == ["record.json"]
    # the run goes on: every drop becomes a manifest row with its reason
    from farside_gan.dataset import build_manifest, load_records

    rows = build_manifest(load_records(sorted(tmp_path.glob("*/record.json"))))
    assert {r["time"]: r["reason"] for r in rows} == {
        t.strftime("%Y-%m-%dT%H:%M:%S"): reason for _, _, t, reason in BAD_FILES.values()}
    assert all(r["status"] == "dropped" and r["detail"] for r in rows)


def test_unknown_source_and_unreachable_server_are_real_failures(tmp_path):
    with pytest.raises(DownloadError, match="neither an archive directory"):
        open_source(str(tmp_path / "nowhere"))
    with pytest.raises(DownloadError, match="failed after"):
        HttpArchive("http://127.0.0.1:9/", retries=1, backoff=0.01).catalog()
    with pytest.raises(DownloadError, match="email"):
        JsocSource(None)


def test_cli_fetch_exit_codes(synthetic_archive, tmp_path):
    from farside_gan.cli import main

    assert main(["fetch", "--source", str(synthetic_archive), "--instrument", "euvi_b", "--channel", "304",
                 "--time", "2011-01-01T12:00:00", "--tolerance", "1h", "--out-dir", str(tmp_path / "ok")]) == 0
    assert (tmp_path / "ok" / "frame.fits").exists()
    assert main(["fetch", "--source", str(synthetic_archive), "--instrument", "aia", "--channel", "304",
                 "--time", "2015-01-01T00:00:00", "--out-dir", str(tmp_path / "none")]) == 0
    assert json.loads((tmp_path / "none" / "record.json").read_text())["reason"] == "no_data"
    assert main(["fetch", "--source", str(tmp_path / "missing"), "--instrument", "aia", "--channel", "304",
                 "--time", "2011-01-01T00:00:00", "--out-dir", str(tmp_path / "bad")]) == 1


def test_jsoc_record_sets_and_fido_query():
    start, end = datetime(2011, 1, 1, 23), datetime(2011, 1, 2, 1)
    assert JsocSource.record_set("aia", 171, start, end) == \
        "aia.lev1_euv_12s[2011.01.01_23:00:00_UTC-2011.01.02_01:00:00_UTC][171]"
    assert JsocSource.record_set("hmi", "magnetogram", start, end) == \
        "hmi.M_720s[2011.01.01_23:00:00_UTC-2011.01.02_01:00:00_UTC]"
    assert JsocSource.export_spec("aia", 304, "2011-01-01T00:00:08Z") == \
        "aia.lev1_euv_12s[2011-01-01T00:00:08Z][304]{image}"
    assert JsocSource.export_spec("hmi", "magnetogram", "2011.01.01_00:00:00_TAI") == \
        "hmi.M_720s[2011.01.01_00:00:00_TAI]{magnetogram}"
    attrs = FidoSource.query_attrs("euvi_b", 195, datetime(2011, 1, 1), timedelta(hours=1))
    text = " ".join(repr(a) for a in attrs)
    assert "EUVI" in text and "STEREO_B" in text and "195" in text and "2010-12-31 23:00:00" in text


def test_dropped_download_resumes_with_a_range_request(http_archive, synthetic_archive, tmp_path):
    http_archive.inject_fault("aia/*.193.*", "drop", count=1)
    record = fetch_observation(http_archive.url, "aia", 193, "2011-01-02T00:00", "1h", tmp_path, **FAST)
    assert record["status"] == "ok"
    gets = [r for r in http_archive.requests if r["path"].endswith(".fits")]
    assert [g["status"] for g in gets] == [200, 206]
    size = (synthetic_archive / record["source_file"]).stat().st_size
    offset = int(gets[1]["range"].split("=")[1].rstrip("-"))
    assert 0 < offset < size  # resumed where the dropped transfer stopped, not from zero
    assert (tmp_path / "frame.fits").read_bytes() == (synthetic_archive / record["source_file"]).read_bytes()


class FakeExport:
    def __init__(self, spec, source_file, fail):
        self.spec, self.source_file, self.fail, self.id = spec, source_file, fail, "JSOC_1"

    def wait(self):
        return True

    def download(self, directory):
        import pandas as pd
        if self.fail:
            self.fail.pop()
            raise ConnectionResetError("connection reset by peer")
        target = f"{directory}/{self.source_file.name}"
        shutil.copy(self.source_file, target)
        return pd.DataFrame({"record": [self.spec], "url": ["http://jsoc/x"], "download": [target]})


class FakeDrmsClient:
    """What drms.Client returns for a query and an export; the file comes from the archive."""
    calls: list = []

    def __init__(self, source_file, fail=()):
        self.source_file, self.fail = source_file, list(fail)

    def query(self, ds, key):
        import pandas as pd
        FakeDrmsClient.calls.append(("query", ds, key))
        return pd.DataFrame({"T_REC": ["2011.01.01_12:00:00_TAI", "2011.01.01_12:12:00_TAI", "2011.01.01_12:24:00_TAI"],
                             "T_OBS": ["2011.01.01_12:00:00_TAI", "2011.01.01_12:12:00_TAI", "MISSING"],
                             "QUALITY": [0x400, 0, 0]})

    def export(self, spec, method, protocol):
        FakeDrmsClient.calls.append(("export", spec, method, protocol))
        return FakeExport(spec, self.source_file, self.fail)


def test_jsoc_source_with_drms_client(monkeypatch, synthetic_archive, tmp_path):
    import csv

    with open(synthetic_archive / "catalog.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["instrument"] == "hmi")
    client = FakeDrmsClient(synthetic_archive / row["path"], fail=[1])  # first download resets
    monkeypatch.setattr(JsocSource, "_client", lambda self: client)
    FakeDrmsClient.calls = []
    record = fetch_observation(JsocSource("me@example.org", retries=2, backoff=0.01), "hmi", "magnetogram",
                               "2011-01-01T12:02:00", "1h", tmp_path)
    assert record["status"] == "ok", record
    # the flagged 12:00 record is skipped for the clean 12:12 one (TAI -> UTC: 12:11:26)
    assert record["source_file"] == "2011.01.01_12:12:00_TAI"
    assert FakeDrmsClient.calls[0] == ("query", "hmi.M_720s[2011.01.01_11:02:00_UTC-2011.01.01_13:02:00_UTC]",
                                       "T_REC,T_OBS,QUALITY")
    exports = [c for c in FakeDrmsClient.calls if c[0] == "export"]
    assert len(exports) == 2 and exports[0][1:] == ("hmi.M_720s[2011.01.01_12:12:00_TAI]{magnetogram}", "url", "fits")
    assert files_in(tmp_path) == ["frame.fits", "record.json"]


def test_fido_source_picks_nearest_row_and_verifies(monkeypatch, synthetic_archive, tmp_path):
    import csv

    import sunpy.net
    from astropy.table import QTable
    from astropy.time import Time

    with open(synthetic_archive / "catalog.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["instrument"] == "euvi_b" and r["channel"] == "171")
    table = QTable({"Start Time": Time(["2011-01-01T10:30:00", "2011-01-01T12:05:30", "2011-01-01T13:40:00"]),
                    "fileid": ["a", "b", "c"]})
    queries, fetched = [], []

    class Results(list):
        errors = []

    def search(*attrs):
        queries.append(attrs)
        return [table]

    def fetch(rows, path, progress, overwrite):
        fetched.append(rows["fileid"][0])
        target = path.format(file=f"{rows['fileid'][0]}.fts")
        shutil.copy(synthetic_archive / row["path"], target)
        return Results([target])

    monkeypatch.setattr(sunpy.net.Fido, "search", search)
    monkeypatch.setattr(sunpy.net.Fido, "fetch", fetch)
    record = fetch_observation("fido", "euvi_b", 171, "2011-01-01T12:00", "1h", tmp_path, **FAST)
    assert record["status"] == "ok" and fetched == ["b"]
    assert "STEREO_B" in " ".join(map(repr, queries[0]))
    assert read_fits(tmp_path / "frame.fits")[1]["OBSRVTRY"] == "STEREO_B"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temporary dir removed
