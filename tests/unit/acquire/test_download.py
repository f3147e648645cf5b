"""download: nearest frame within tolerance from the local and 127.0.0.1 HTTP archives, with
injected faults (503 retried, dropped connection leaves no partial file, truncation refetched),
no-data and bad-file records; the Fido/JSOC query builders."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta

import pytest

from farside_gan.acquire.download import (DownloadError, FidoSource, HttpArchive, JsocSource,
                                          fetch_observation, open_source, times_at_cadence)
from farside_gan.core.fitsio import read_fits
from farside_gan.core.times import parse_duration

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


def test_dropped_connection_keeps_a_partial_file_that_the_next_run_resumes(http_archive, synthetic_archive,
                                                                          tmp_path):
    http_archive.inject_fault("aia/*.304.*", "drop", count=10)
    with pytest.raises(DownloadError, match="failed after 4 attempts"):
        fetch_observation(http_archive.url, "aia", 304, "2011-01-01T00:00", "1h", tmp_path, **FAST)
    assert not (tmp_path / "frame.fits").exists() and not (tmp_path / "record.json").exists()
    partial = tmp_path / ".frame.fits.part"   # hidden, never taken for the frame
    kept = partial.stat().st_size
    http_archive.reset()
    record = fetch_observation(http_archive.url, "aia", 304, "2011-01-01T00:00", "1h", tmp_path, **FAST)
    size = (synthetic_archive / record["source_file"]).stat().st_size
    assert 0 < kept < size
    [get] = [r for r in http_archive.requests if r["path"].endswith(".fits")]
    assert get["status"] == 206 and get["range"] == f"bytes={kept}-"   # resumed, not restarted
    assert (tmp_path / "frame.fits").read_bytes() == (synthetic_archive / record["source_file"]).read_bytes()
    assert files_in(tmp_path) == ["frame.fits", "record.json"]


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
    from farside_gan.core.instruments import Observation, archive_relpath
    from farside_gan.synthetic.archive import sha256_of, write_catalog
    from farside_gan.testing.bad_files import BAD_FILES

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
    # a card garbled in transfer breaks the file's FITS CHECKSUM, which the download's own
    # verification catches before the header checks see it
    at_download = {"corrupt_header": "corrupt_fits"}
    for defect, (instrument, channel, time, reason) in BAD_FILES.items():
        reason = at_download.get(defect, reason)
        out = tmp_path / defect
        record = fetch_observation(str(root), instrument, channel, time, "10m", out, **FAST)
        assert record["status"] == "dropped" and record["reason"] == reason, (defect, record)
        assert record["source_file"] in record["detail"]
        assert files_in(out) == ["record.json"]
    # the run goes on: every drop becomes a manifest row with its reason
    from farside_gan.prepare.manifest import build_manifest, load_records

    rows = build_manifest(load_records(sorted(tmp_path.glob("*/record.json"))))
    assert {r["time"]: r["reason"] for r in rows} == {
        t.strftime("%Y-%m-%dT%H:%M:%S"): at_download.get(defect, reason)
        for defect, (_, _, t, reason) in BAD_FILES.items()}
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


def test_fido_source_picks_nearest_row_and_verifies(monkeypatch, synthetic_archive, tmp_path):
    import csv

    import sunpy.net
    from astropy.table import QTable
    from astropy.time import Time

    with open(synthetic_archive / "catalog.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["instrument"] == "euvi_b"
                   and r["channel"] == "171" and r["time"].startswith("2011-01-01T12"))  # "b"
    table = QTable({"Start Time": Time(["2011-01-01T10:30:00", "2011-01-01T12:05:30", "2011-01-01T13:40:00"]),
                    "fileid": ["a", "b", "c"]})
    queries, fetched = [], []

    class Results(list):
        errors = []

    def search(*attrs):
        queries.append(attrs)
        return [table]

    def fetch(rows, path, downloader):
        assert downloader.config.max_conn == 2   # fetch.connections
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


# -- catalog integrity, an old frame kept until the new one is verified, paths confined to the
#    archive, a deadline per file

def test_kept_frame_needs_no_network_and_refetch_replaces_only_a_verified_frame(http_archive, tmp_path):
    first = fetch_observation(http_archive.url, "hmi", "magnetogram", "2011-01-01T12:00", "1h", tmp_path, **FAST)
    assert first["status"] == "ok" and first["action"] == "downloaded" and first["series"] == "hmi.M_720s"
    frame = (tmp_path / "frame.fits").read_bytes()
    http_archive.reset()
    again = fetch_observation(http_archive.url, "hmi", "magnetogram", "2011-01-01T12:00", "1h", tmp_path, **FAST)
    assert again == {**first, "action": "kept"} and http_archive.requests == []
    # a re-fetch against a server that is down leaves the good frame and its record in place
    with pytest.raises(DownloadError):
        fetch_observation("http://127.0.0.1:9/", "hmi", "magnetogram", "2011-01-01T12:00", "1h", tmp_path,
                          refetch=True, retries=1, backoff=0.01)
    assert (tmp_path / "frame.fits").read_bytes() == frame
    assert json.loads((tmp_path / "record.json").read_text()) == first
    # a frame that no longer matches its record is fetched again, not kept
    (tmp_path / "frame.fits").write_bytes(frame[:-2880])
    third = fetch_observation(http_archive.url, "hmi", "magnetogram", "2011-01-01T12:00", "1h", tmp_path, **FAST)
    assert third["action"] == "downloaded" and (tmp_path / "frame.fits").read_bytes() == frame


def test_a_different_request_or_series_is_not_kept(synthetic_archive, tmp_path):
    first = fetch_observation(str(synthetic_archive), "hmi", "magnetogram", "2011-01-01T00:00", "1h", tmp_path, **FAST)
    other_tolerance = fetch_observation(str(synthetic_archive), "hmi", "magnetogram", "2011-01-01T00:00", "30m",
                                        tmp_path, **FAST)
    assert other_tolerance["action"] == "downloaded" and other_tolerance["tolerance_s"] == 1800
    # a frame recorded as another series (e.g. a 45-second magnetogram of an older run) is replaced
    record = json.loads((tmp_path / "record.json").read_text())
    (tmp_path / "record.json").write_text(json.dumps({**record, "series": "hmi.M_45s"}))
    replaced = fetch_observation(str(synthetic_archive), "hmi", "magnetogram", "2011-01-01T00:00", "30m",
                                 tmp_path, **FAST)
    assert replaced["action"] == "downloaded" and replaced["series"] == "hmi.M_720s"
    assert replaced["sha256"] == first["sha256"]


def test_truncated_catalog_with_matching_length_is_refetched_never_taken_as_no_data(http_archive, tmp_path):
    ok = fetch_observation(http_archive.url, "hmi", "magnetogram", "2011-01-02T00:00", "1h", tmp_path / "a", **FAST)
    assert ok["status"] == "ok"
    # HMI's last row ends the catalog: the first half of it (what 'truncate' sends, with a
    # matching Content-Length) lacks the row, which made this frame look like missing data
    http_archive.reset()
    http_archive.inject_fault("catalog.csv", "truncate", count=1)
    record = fetch_observation(http_archive.url, "hmi", "magnetogram", "2011-01-02T00:00", "1h", tmp_path / "b",
                               **FAST)
    assert record["status"] == "ok", record
    catalog_gets = [r for r in http_archive.requests if r["path"] == "/catalog.csv"]
    assert [r["fault"] for r in catalog_gets] == ["truncate", None]
    # a catalog that stays truncated fails the fetch; the frame already there is not touched
    http_archive.inject_fault("catalog.csv", "truncate", count=10)
    with pytest.raises(DownloadError, match="does not match catalog.csv.sha256"):
        fetch_observation(http_archive.url, "hmi", "magnetogram", "2011-01-02T00:00", "1h", tmp_path / "a",
                          refetch=True, **FAST)
    assert json.loads((tmp_path / "a" / "record.json").read_text()) == ok
    assert (tmp_path / "a" / "frame.fits").exists()


def _hostile_archive(root, synthetic_archive, paths):
    """An archive whose catalog (with a valid checksum) lists ``paths`` for AIA 171 at 00:00."""
    from farside_gan.core.instruments import catalog_checksum_line
    from farside_gan.synthetic import read_catalog

    row = next(r for r in read_catalog(synthetic_archive) if r["instrument"] == "aia" and r["channel"] == "171")
    root.mkdir(parents=True, exist_ok=True)
    lines = ["instrument,channel,time,path,size,sha256"]
    lines += [f"aia,171,{row['time']},{p},{row['size']},{row['sha256']}" for p in paths]
    body = ("\n".join(lines) + "\n").encode()
    (root / "catalog.csv").write_bytes(body)
    (root / "catalog.csv.sha256").write_text(catalog_checksum_line(body))
    return row


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_local_catalog_paths_are_confined_to_the_archive(synthetic_archive, tmp_path, kind):
    src = synthetic_archive / _hostile_archive(tmp_path / "probe", synthetic_archive, ["x"])["path"]
    outside = tmp_path / "outside.fits"
    shutil.copy(src, outside)
    root = tmp_path / "archive"
    if kind == "symlink":
        (root / "aia").mkdir(parents=True)
        (root / "aia" / "link.fits").symlink_to(outside)
    path = {"dotdot": "../outside.fits", "absolute": str(outside), "symlink": "aia/link.fits"}[kind]
    _hostile_archive(root, synthetic_archive, [path])
    with pytest.raises(DownloadError, match="outside the archive" if kind == "symlink" else "archive path"):
        fetch_observation(str(root), "aia", 171, "2011-01-01T00:00", "1h", tmp_path / "out", **FAST)
    assert not (tmp_path / "out" / "frame.fits").exists()


def test_http_catalog_row_cannot_switch_server(synthetic_archive, tmp_path):
    from farside_gan.testing.http_archive import ArchiveServer

    row = _hostile_archive(tmp_path / "hostile", synthetic_archive, ["x"])
    with ArchiveServer(synthetic_archive) as other:
        _hostile_archive(tmp_path / "hostile", synthetic_archive, [f"//127.0.0.1:{other.port}/{row['path']}"])
        with ArchiveServer(tmp_path / "hostile") as hostile:
            with pytest.raises(DownloadError, match="names another host"):
                fetch_observation(hostile.url, "aia", 171, "2011-01-01T00:00", "1h", tmp_path / "out", **FAST)
        assert other.requests == []   # nothing was asked of the other server
    assert not (tmp_path / "out" / "frame.fits").exists()


def test_a_trickling_server_is_cut_off_at_the_file_deadline(http_archive, tmp_path):
    import time

    http_archive.trickle_interval = 0.05   # a byte every 50 ms: every socket read succeeds
    try:
        http_archive.inject_fault("hmi/*", "trickle", count=1)
        start = time.monotonic()
        with pytest.raises(DownloadError, match="deadline"):
            fetch_observation(http_archive.url, "hmi", "magnetogram", "2011-01-01T00:00", "1h", tmp_path,
                              deadline_s=1.0, **FAST)
        assert time.monotonic() - start < 4.0
    finally:
        http_archive.trickle_interval = 20.0
    assert not (tmp_path / "frame.fits").exists()
    assert 0 < (tmp_path / ".frame.fits.part").stat().st_size   # what arrived is kept for a resume


def test_429_with_retry_after_is_honoured(http_archive, tmp_path, monkeypatch):
    import farside_gan.acquire.transfer as transfer

    slept = []
    monkeypatch.setattr(transfer, "_sleep", slept.append)
    http_archive.retry_after = 7
    try:
        http_archive.inject_fault("aia/*.193.*", "429", count=2)
        record = fetch_observation(http_archive.url, "aia", 193, "2011-01-01T00:00", "1h", tmp_path, **FAST)
    finally:
        http_archive.retry_after = 0
    assert record["status"] == "ok"
    assert slept == [7, 7]   # the server's Retry-After, not the 0.01 s backoff
    assert [r["status"] for r in http_archive.requests if "193" in r["path"]] == [429, 429, 200]


def test_cli_fetch_period_writes_frames_and_the_index_and_keeps_them(synthetic_archive, tmp_path, capsys):
    from farside_gan.cli import main

    out = tmp_path / "raw" / "euvi_a" / "201101"
    argv = ["fetch-period", "--source", str(synthetic_archive), "--instrument", "euvi_a",
            "--times", "2011-01-01T00:00", "2011-01-01T12:00", "--out-dir", str(out),
            "--index", str(out / "records.json")]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"ok:downloaded": 6}
    index = json.loads((out / "records.json").read_text())
    assert index["instrument"] == "euvi_a" and index["series"] == "secchi.L0.euvi_a"
    assert [r["dir"] for r in index["records"]] == [f"{c}/20110101T{h}" for h in ("0000", "1200")
                                                   for c in ("304", "195", "171")]
    for r in index["records"]:
        assert read_fits(out / r["dir"] / "frame.fits")[1]["WAVELNTH"] == int(r["channel"])
        assert json.loads((out / r["dir"] / "record.json").read_text()) == {k: v for k, v in r.items() if k != "dir"}
    # the lead's rerun after a grid change: old frames kept, the new time fetched
    assert main(argv[:6] + ["2011-01-01T00:00", "2011-01-01T12:00", "2011-01-02T00:00"] + argv[8:]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"ok:downloaded": 3, "ok:kept": 6}
    assert len(json.loads((out / "records.json").read_text())["records"]) == 9
    # a failing source: exit 1, and the index is left as it was
    before = (out / "records.json").read_bytes()
    assert main(["fetch-period", "--source", str(tmp_path / "nowhere"), "--instrument", "euvi_a",
                 "--times", "2011-01-01T00:00", "--out-dir", str(out), "--index", str(out / "records.json")]) == 1
    assert (out / "records.json").read_bytes() == before


def test_an_archive_without_catalog_checksum_is_refused(synthetic_archive, tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    shutil.copy(synthetic_archive / "catalog.csv", root / "catalog.csv")
    with pytest.raises(DownloadError, match="cannot read catalog.csv.sha256"):
        fetch_observation(str(root), "aia", 171, "2011-01-01T00:00", "1h", tmp_path / "out", **FAST)


def test_period_over_http_keeps_what_arrived_when_one_frame_fails(http_archive, tmp_path):
    from farside_gan.acquire.download import fetch_period

    times = ["2011-01-01T00:00", "2011-01-01T12:00"]
    http_archive.inject_fault("aia/*/2011/01/01/*T12*.193.*", "drop", count=100)
    with pytest.raises(DownloadError, match="1 of 6 frames not fetched"):
        fetch_period(http_archive.url, "aia", times, tmp_path, connections=2, index=tmp_path / "records.json", **FAST)
    assert sorted(p.parent.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*/frame.fits")) == [
        "171/20110101T0000", "171/20110101T1200", "193/20110101T0000", "304/20110101T0000", "304/20110101T1200"]
    assert (tmp_path / "193" / "20110101T1200" / ".frame.fits.part").stat().st_size > 0
    assert not (tmp_path / "records.json").exists()
    http_archive.reset()
    records = fetch_period(http_archive.url, "aia", times, tmp_path, connections=2, index=tmp_path / "records.json",
                           **FAST)
    assert [r["action"] for r in records] == ["kept"] * 4 + ["downloaded", "kept"]
    [get] = [r for r in http_archive.requests if r["path"].endswith(".fits")]
    assert get["status"] == 206 and "T12" in get["path"] and ".193." in get["path"]
    assert json.loads((tmp_path / "records.json").read_text())["counts"] == {"ok": 6}


def test_a_frame_fetched_from_a_local_archive_honours_the_umask(tmp_path, synthetic_archive):
    """The download's copy of a local archive's file gets the umask's permissions like every
    other output (tests/unit/core/test_output_permissions.py), not mkstemp's 0600."""
    import stat

    from farside_gan.acquire.download import fetch_observation
    old = os.umask(0o022)
    try:
        record = fetch_observation(str(synthetic_archive), "hmi", "magnetogram",
                                   "2011-01-01T00:00", "1h", tmp_path / "o")
    finally:
        os.umask(old)
    assert record["status"] == "ok"
    assert stat.S_IMODE((tmp_path / "o/frame.fits").stat().st_mode) == 0o644
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["frame.fits", "record.json"]
