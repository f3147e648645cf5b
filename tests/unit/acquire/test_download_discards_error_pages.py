"""A server's HTML error page sent instead of a file (with status 200) is never kept as the start
of that file: neither after the failed fetch, for a rerun to resume from, nor when an earlier run
left one."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from farside_gan.acquire.download import DownloadError, fetch_observation
from farside_gan.acquire.records import FRAME_NAME, PARTIAL_NAME
from farside_gan.synthetic.archive import read_catalog

FAST = {"retries": 2, "backoff": 0.0, "deadline_s": 60.0}


def test_an_html_answer_is_not_kept_for_resuming(http_archive, synthetic_archive, tmp_path):
    """The server answers an HTML page (status 200) at every attempt: the fetch fails and keeps
    no bytes of it; the rerun downloads the file from its first byte, not a Range after the
    page's length."""
    [row] = [r for r in read_catalog(synthetic_archive) if r["instrument"] == "aia"
             and r["channel"] == "171" and r["time"].startswith("2011-01-01T00")]
    http_archive.inject_fault(row["path"], "html", count=FAST["retries"] + 1)
    out = tmp_path / "frame"
    with pytest.raises(DownloadError, match="not a FITS file"):
        fetch_observation(http_archive.url, "aia", 171, "2011-01-01T00:00", "1h", out, **FAST)
    assert [r["fault"] for r in http_archive.requests if r["path"].endswith(".fits")] == \
        ["html"] * (FAST["retries"] + 1)
    partial = out / PARTIAL_NAME
    assert not partial.exists() or partial.read_bytes() == b"", partial.read_bytes()[:80]
    http_archive.reset()
    record = fetch_observation(http_archive.url, "aia", 171, "2011-01-01T00:00", "1h", out, **FAST)
    assert record["status"] == "ok"
    gets = [r for r in http_archive.requests if r["path"].endswith(".fits")]
    assert [(g["status"], g["range"]) for g in gets] == [(200, None)]
    assert (out / FRAME_NAME).read_bytes() == (synthetic_archive / row["path"]).read_bytes()


def test_bytes_of_an_error_page_left_by_an_earlier_run_are_not_resumed(http_archive,
                                                                        synthetic_archive,
                                                                        tmp_path):
    """A partial file an earlier version left holding an error page is discarded before the
    download starts."""
    from farside_gan.testing.bad_files import HTML_ANSWER
    [row] = [r for r in read_catalog(synthetic_archive) if r["instrument"] == "aia"
             and r["channel"] == "193" and r["time"].startswith("2011-01-01T00")]
    out = tmp_path / "frame"
    out.mkdir()
    (out / PARTIAL_NAME).write_bytes(HTML_ANSWER)
    (out / f"{PARTIAL_NAME}.src").write_text(f"{http_archive.url}/{row['path']}")
    record = fetch_observation(http_archive.url, "aia", 193, "2011-01-01T00:00", "1h", out, **FAST)
    assert record["status"] == "ok"
    gets = [r for r in http_archive.requests if r["path"].endswith(".fits")]
    assert [(g["status"], g["range"]) for g in gets] == [(200, None)]
    assert np.array_equal(fits.getdata(out / FRAME_NAME), fits.getdata(synthetic_archive /
                                                                         row["path"]))
