"""The 127.0.0.1 HTTP archive (``farside_gan.testing.http_archive``): files served intact with
byte ranges, catalog search, injected faults (503, a dropped connection, truncation), 400 for bad
requests, parfive as a client; `farside-gan serve-archive`."""

from __future__ import annotations

import hashlib
import http.client
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_fits
from farside_gan.core.instruments import CATALOG_COLUMNS
from farside_gan.synthetic import read_catalog


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def get(url: str, headers: dict | None = None):
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10)


def test_http_archive_serves_files_intact_and_resumes_byte_ranges(synthetic_archive, http_archive):
    row = read_catalog(synthetic_archive)[0]
    body = get(f"{http_archive.url}/{row['path']}").read()
    assert len(body) == row["size"] and sha256(body) == row["sha256"]
    with get(f"{http_archive.url}/{row['path']}", {"Range": "bytes=1000-"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 1000-{row['size'] - 1}/{row['size']}"
        assert body[:1000] + response.read() == body
    head = urllib.request.urlopen(urllib.request.Request(f"{http_archive.url}/{row['path']}", method="HEAD"))
    assert int(head.headers["Content-Length"]) == row["size"] and head.read() == b""
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        get(f"{http_archive.url}/aia/no/such/file.fits")
    assert excinfo.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        get(f"{http_archive.url}/../../etc/passwd")
    assert excinfo.value.code == 404
    assert [r["status"] for r in http_archive.requests] == [200, 206, 200, 404, 404]


def test_http_archive_search_answers_catalog_rows(synthetic_archive, http_archive):
    text = get(f"{http_archive.url}/search?instrument=aia&channel=171"
               "&start=2011-01-01T06:00:00&end=2011-01-02T06:00:00").read().decode()
    lines = text.strip().splitlines()
    assert lines[0] == ",".join(CATALOG_COLUMNS)
    times = [line.split(",")[2][:19] for line in lines[1:]]
    assert times == ["2011-01-01T12:00:01", "2011-01-02T00:00:01"]


def test_injected_503_is_answered_then_cleared(synthetic_archive, http_archive):
    row = read_catalog(synthetic_archive)[1]
    http_archive.inject_fault(row["path"], "503", count=2)
    for _ in range(2):
        with pytest.raises(urllib.error.HTTPError) as excinfo:
            get(f"{http_archive.url}/{row['path']}")
        assert excinfo.value.code == 503 and excinfo.value.headers["Retry-After"] == "0"
    assert sha256(get(f"{http_archive.url}/{row['path']}").read()) == row["sha256"]
    assert [r["fault"] for r in http_archive.requests] == ["503", "503", None]
    assert http_archive.pending_faults() == []


def test_injected_drop_cuts_the_connection_mid_file(synthetic_archive, http_archive):
    row = read_catalog(synthetic_archive)[2]
    http_archive.inject_fault("*.fits", "drop")
    with get(f"{http_archive.url}/{row['path']}") as response:
        assert int(response.headers["Content-Length"]) == row["size"]
        with pytest.raises(http.client.IncompleteRead) as excinfo:
            response.read()
    assert len(excinfo.value.partial) == row["size"] // 2
    # The client resumes from what it has.
    rest = get(f"{http_archive.url}/{row['path']}", {"Range": f"bytes={len(excinfo.value.partial)}-"}).read()
    assert sha256(excinfo.value.partial + rest) == row["sha256"]


def test_injected_truncation_looks_complete_but_fails_verification(synthetic_archive, http_archive, tmp_path):
    row = read_catalog(synthetic_archive)[3]
    http_archive.inject_fault(row["path"].rsplit("/", 1)[1], "truncate")
    with get(f"{http_archive.url}/{row['path']}") as response:
        body = response.read()   # no transport error: Content-Length matches what was sent
        assert int(response.headers["Content-Length"]) == len(body) == row["size"] // 2
    assert sha256(body) != row["sha256"]
    (tmp_path / "x.fits").write_bytes(body)
    with pytest.raises(InputDataError):
        read_fits(tmp_path / "x.fits")


def test_parfive_downloads_from_the_http_archive(synthetic_archive, http_archive, tmp_path):
    parfive = pytest.importorskip("parfive")
    rows = read_catalog(synthetic_archive)[:3]
    downloader = parfive.Downloader(max_conn=2, progress=False)
    for row in rows:
        downloader.enqueue_file(f"{http_archive.url}/{row['path']}", path=tmp_path)
    results = downloader.download()
    assert not results.errors
    for row in rows:
        data = (tmp_path / row["path"].rsplit("/", 1)[1]).read_bytes()
        assert sha256(data) == row["sha256"]


def test_fault_options_parse():
    from farside_gan.cli.synthetic import parse_fault
    assert parse_fault("aia/*.171.*:drop") == ("aia/*.171.*", "drop", 1)
    assert parse_fault("hmi/*:503:3") == ("hmi/*", "503", 3)
    import argparse
    with pytest.raises(argparse.ArgumentTypeError):
        parse_fault("hmi/*:explode")


def test_cli_serve_archive_prints_its_url_and_serves(synthetic_archive):
    process = subprocess.Popen([sys.executable, "-m", "farside_gan", "serve-archive", str(synthetic_archive),
                                "--fault", "catalog.csv:503:2"], stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        for _ in range(2):
            with pytest.raises(urllib.error.HTTPError) as excinfo:
                get(f"{url}/catalog.csv")
            assert excinfo.value.code == 503
        catalog = get(f"{url}/catalog.csv").read()
        assert catalog == (synthetic_archive / "catalog.csv").read_bytes()
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("path, reason", [
    ("/aia/x%00.fits", "NUL character"),
    ("/search?instrument=aia&start=not-a-time", "'not-a-time' is not a time"),
    ("/search?instrument=aia&end=2011-13-45T00:00", "is not a time"),
])
def test_archive_server_answers_bad_requests_with_400(http_archive, path, reason):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(http_archive.url + path, timeout=10)
    assert excinfo.value.code == 400 and reason in excinfo.value.read().decode()
    # the server is still there and the connection was answered, not dropped
    assert urllib.request.urlopen(http_archive.url + "/catalog.csv.sha256", timeout=10).status == 200
