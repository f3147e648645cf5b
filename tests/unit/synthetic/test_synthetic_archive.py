"""The synthetic archives: catalog and layout, bad files, and the 127.0.0.1 HTTP archive's faults."""

from __future__ import annotations

import hashlib
import http.client
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime

import numpy as np
import pytest
from astropy.io import fits

from farside_gan.cli import main as cli_main
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_fits
from farside_gan.core.instruments import CATALOG_COLUMNS, Observation, archive_relpath
from farside_gan.synthetic import read_catalog
from farside_gan.testing.bad_files import BAD_FILES, QUALITY_FLAG


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def get(url: str, headers: dict | None = None):
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10)


def test_catalog_lists_every_file_with_its_size_checksum_and_archive_name(synthetic_archive):
    rows = read_catalog(synthetic_archive)
    header_line = (synthetic_archive / "catalog.csv").read_text().splitlines()[0]
    assert tuple(header_line.split(",")) == CATALOG_COLUMNS
    assert {(r["instrument"], r["channel"]) for r in rows} == {
        ("aia", "304"), ("aia", "193"), ("aia", "171"), ("hmi", "magnetogram"),
        ("euvi_a", "304"), ("euvi_a", "195"), ("euvi_a", "171"),
        ("euvi_b", "304"), ("euvi_b", "195"), ("euvi_b", "171")}
    for row in rows:
        data = (synthetic_archive / row["path"]).read_bytes()
        assert len(data) == row["size"] and sha256(data) == row["sha256"]
    hmi = next(r for r in rows if r["instrument"] == "hmi")
    # JSOC names HMI records by T_REC in TAI; the catalog time is UTC (34 s earlier in 2011).
    assert hmi["time"] == "2010-12-31T23:59:26.000"
    assert hmi["path"] == archive_relpath(Observation("hmi", "magnetogram", datetime(2011, 1, 1)))
    euvi = [r for r in rows if r["instrument"] == "euvi_a" and r["time"].startswith("2011-01-01T00")]
    header = fits.getheader(synthetic_archive / euvi[0]["path"])
    assert header["FILENAME"] == euvi[0]["path"].rsplit("/", 1)[1]
    assert len({r["path"] for r in euvi}) == 3   # SECCHI names carry no wavelength: distinct times


def test_a_file_does_not_depend_on_the_other_times_in_the_archive(tmp_path):
    from farside_gan.synthetic import SyntheticSun, build_archive
    times = [datetime(2013, 5, 1), datetime(2013, 5, 3, 12)]
    both = build_archive(tmp_path / "both", times, instruments=("euvi_a", "hmi"), size=32,
                         sun=SyntheticSun(seed=2, grid_deg=0.5), seed=2)
    last = build_archive(tmp_path / "last", times[1:], instruments=("euvi_a", "hmi"), size=32,
                         sun=SyntheticSun(seed=2, grid_deg=0.5), seed=2)
    assert len(both) == 8 and len(last) == 4
    by_path = {r["path"]: r["sha256"] for r in both}
    assert all(by_path[r["path"]] == r["sha256"] for r in last)


def test_archive_has_no_stereo_b_data_after_contact_was_lost(tmp_path):
    from farside_gan.synthetic import SyntheticSun, build_archive
    rows = build_archive(tmp_path, [datetime(2014, 9, 30), datetime(2014, 10, 2)], instruments=("euvi_b",),
                         size=16, sun=SyntheticSun(seed=0, grid_deg=1.0))
    assert {r["time"][:10] for r in rows} == {"2014-09-30"} and len(rows) == 3


def test_bad_files_have_exactly_their_defect(bad_files):
    assert set(bad_files) == set(BAD_FILES)
    with pytest.raises(InputDataError) as excinfo:
        read_fits(bad_files["truncated"])
    assert excinfo.value.reason == "corrupt_fits"
    assert str(bad_files["truncated"]) in str(excinfo.value)

    data, header = read_fits(bad_files["missing_date_obs"])
    assert "DATE-OBS" not in header and header["WAVELNTH"] == 171 and np.isfinite(data).all()

    data, header = read_fits(bad_files["all_nan"])
    assert np.isnan(data).all() and header["BUNIT"] == "Gauss"

    _, header = read_fits(bad_files["quality_flagged"])
    assert header["QUALITY"] == QUALITY_FLAG != 0

    _, header = read_fits(bad_files["wrong_channel"])
    assert ".171." in bad_files["wrong_channel"].name and header["WAVELNTH"] == 193
    for defect in ("missing_date_obs", "all_nan", "quality_flagged", "wrong_channel"):
        with fits.open(bad_files[defect], checksum=True) as hdul:   # valid FITS, valid checksums
            assert hdul[0].header["CHECKSUM"]


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


def test_cli_writes_an_archive_and_bad_files(tmp_path, capsys):
    root = tmp_path / "archive"
    assert cli_main(["synth-archive", str(root), "--start", "2012-01-01T00:00", "--end", "2012-01-01T11:00",
                     "--cadence", "12h", "--instruments", "hmi,euvi_b", "--size", "48",
                     "--euvi-size", "32", "--seed", "5", "--grid-deg", "0.5"]) == 0
    rows = read_catalog(root)
    assert len(rows) == 1 + 3
    assert {fits.getheader(root / r["path"])["NAXIS1"] for r in rows if r["instrument"] == "euvi_b"} == {32}
    assert all(fits.getheader(root / r["path"])["SYNSEED"] == 5 for r in rows)
    assert cli_main(["synth-bad-files", str(tmp_path / "bad"), "--size", "32"]) == 0
    assert len(list((tmp_path / "bad").glob("*.fits"))) == len(BAD_FILES)


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
