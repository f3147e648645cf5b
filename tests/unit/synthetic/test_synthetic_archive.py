"""The synthetic archive: a catalog of every file with its size and checksum, the real archives'
layout and file names, each file independent of the other times, the missions' data periods;
`farside-gan synth-archive` and `synth-bad-files` write them."""

from __future__ import annotations

import hashlib
from datetime import datetime

from astropy.io import fits

from farside_gan.cli import main as cli_main
from farside_gan.core.instruments import CATALOG_COLUMNS, Observation, archive_relpath
from farside_gan.synthetic import read_catalog
from farside_gan.testing.bad_files import BAD_FILES


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
