"""fetch keeps only frames it can vouch for: not a frame whose own time is not the one its archive
lists it under, nor a frame whose disk is half cut off by the frame's edge."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from astropy.io import fits

from farside_gan.acquire.download import fetch_observation
from farside_gan.acquire.records import FRAME_NAME
from farside_gan.synthetic.archive import read_catalog, write_catalog
from farside_gan.testing.http_archive import ArchiveServer

FAST = {"retries": 2, "backoff": 0.0, "deadline_s": 60.0}


def one_frame_archive(root: Path, synthetic_archive: Path, listed_time: str | None = None,
                      change=None) -> dict:
    """An archive of the synthetic AIA 171 frame of 2011-01-01T00, listed at ``listed_time``
    (default: its own time) and changed by ``change(hdul)`` (the file rewritten with valid
    checksums: an archive publishing a bad frame, not a damaged transfer); returns its row."""
    [row] = [r for r in read_catalog(synthetic_archive) if r["instrument"] == "aia"
             and r["channel"] == "171" and r["time"].startswith("2011-01-01T00")]
    (root / row["path"]).parent.mkdir(parents=True)
    shutil.copy(synthetic_archive / row["path"], root / row["path"])
    if change is not None:
        with fits.open(root / row["path"]) as hdul:
            change(hdul)
            hdul.writeto(root / row["path"], overwrite=True, checksum=True)
    from farside_gan.core.fitsio import sha256_of
    row = {**row, "time": listed_time or row["time"], "size": (root / row["path"]).stat().st_size,
           "sha256": sha256_of(root / row["path"])}
    write_catalog(root, [row])
    return row


@pytest.mark.parametrize("source", ["local", "http"])
def test_a_frame_its_catalog_lists_two_months_off_is_dropped(synthetic_archive, tmp_path, source):
    """The catalog says 2011-03-01 for a file whose DATE-OBS is 2011-01-01: fetched for
    2011-03-01, it would have become a training pair two months off."""
    root = tmp_path / "archive"
    row = one_frame_archive(root, synthetic_archive, listed_time="2011-03-01T00:00:01.339")
    out = tmp_path / "frame"
    with ArchiveServer(root) as server:
        spec = str(root) if source == "local" else server.url
        record = fetch_observation(spec, "aia", 171, "2011-03-01T00:00", "1h", out, **FAST)
    assert record["status"] == "dropped" and record["reason"] == "time_mismatch", record
    assert record["detail"].startswith(f"{row['path']}: observed 2011-01-01T00:00:01"), record
    assert "from the requested 2011-03-01T00:00:00 (tolerance 1:00:00)" in record["detail"]
    assert not (out / FRAME_NAME).exists()


def test_the_listed_time_of_a_right_catalog_passes(synthetic_archive, tmp_path):
    """The control: the same archive with the file's own time fetches the frame."""
    root = tmp_path / "archive"
    one_frame_archive(root, synthetic_archive)
    record = fetch_observation(str(root), "aia", 171, "2011-01-01T00:00", "1h", tmp_path / "f",
                               **FAST)
    assert record["status"] == "ok" and (tmp_path / "f" / FRAME_NAME).exists()


def crop_half_the_disk(hdul) -> None:
    """Keep the columns up to just past the disk's centre: the Sun's centre stays in the frame
    (CRPIX unchanged), the disk's other half is gone, as in a frame cut short in its width."""
    hdu = hdul[0]
    keep = int(round(hdu.header["CRPIX1"])) + 2
    hdu.data = hdu.data[:, :keep].copy()


def test_a_frame_with_half_its_disk_cropped_is_dropped_at_fetch(synthetic_archive, tmp_path):
    root = tmp_path / "archive"
    row = one_frame_archive(root, synthetic_archive, change=crop_half_the_disk)
    with fits.open(root / row["path"]) as hdul:
        assert hdul[0].data.shape[1] < 0.6 * hdul[0].data.shape[0]
    out = tmp_path / "frame"
    record = fetch_observation(str(root), "aia", 171, "2011-01-01T00:00", "1h", out, **FAST)
    assert record["status"] == "dropped" and record["reason"] == "empty_data", record
    assert "of the solar disk lies beyond the edges" in record["detail"], record
    share = float(record["detail"].split("% of the solar disk")[0].rsplit(" ", 1)[-1])
    assert 40 <= share <= 55  # about half: the centre is two pixels inside the edge
    assert not (out / FRAME_NAME).exists()
