"""A FITS file whose header is damaged (binary garbage over its NAXISn cards, as a bad copy or
disk leaves it) is refused by every reader of ``core.fitsio`` with an InputDataError naming the
file and the card, instead of astropy's ``KeyError: "Keyword 'NAXIS1' not found."``; astropy's
warnings about the garbage do not reach the user as many lines of binary text."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from helpers import REPO

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import open_fits, read_fits, read_header
from farside_gan.testing.bad_files import garble_naxis_cards



def image(path: Path, **cards) -> Path:
    header = fits.Header(cards)
    fits.PrimaryHDU(np.arange(64, dtype=np.float32).reshape(8, 8), header).writeto(path)
    return path


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("reader", [read_fits, read_header,
                                    lambda p: open_fits(p).__enter__()])
def test_garbled_naxis_cards_are_an_input_error_naming_file_and_card(tmp_path, seed, reader):
    path = garble_naxis_cards(image(tmp_path / "frame.fits", EXPTIME=2.0), seed=seed)
    assert b"NAXIS1  =" not in path.read_bytes()[:2880]  # the cards are gone, not just changed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputDataError) as err:
            reader(path)
    assert err.value.reason == "corrupt_fits"
    assert str(err.value) == (f"{path}: not a readable FITS file (header card NAXIS1 is missing "
                              "or garbled)")
    assert caught == []  # astropy's complaints about the garbage: the refusal says it all


def test_a_file_that_is_read_keeps_astropy_warnings_on_one_line_each(tmp_path):
    """A garbled card astropy can skip (a COMMENT) leaves the file readable; its warning comes
    once, as one line of printable text."""
    path = image(tmp_path / "frame.fits", EXPTIME=2.0, COMMENT="fine")
    raw = bytearray(path.read_bytes())
    at = raw.index(b"COMMENT fine")
    raw[at:at + 80] = (b"COMM\x00\x01\nNT \xff\xfe garbage\n" + b"\x7f" * 80)[:80]
    path.write_bytes(bytes(raw))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data, header = read_fits(path)
    assert data.shape == (8, 8) and header["EXPTIME"] == 2.0
    assert caught, "astropy warns of the invalid card"
    for w in caught:
        text = str(w.message)
        assert "\n" not in text and all(32 <= ord(c) < 127 for c in text), repr(text)


@pytest.mark.parametrize("content, words", [
    (b"", "file is empty (0 bytes)"),
    (b"<!DOCTYPE html>\n<html><body>Service Unavailable</body></html>\n", "not a readable FITS"),
])
def test_empty_and_html_files_are_input_errors(tmp_path, content, words):
    path = tmp_path / "frame.fits"
    path.write_bytes(content)
    for reader in (read_fits, read_header):
        with pytest.raises(InputDataError, match=re.escape(words)) as err:
            reader(path)
        assert str(err.value).startswith(f"{path}: ")


def test_a_directory_is_not_a_fits_file(tmp_path):
    with pytest.raises(InputDataError, match="is a directory"):
        read_fits(tmp_path)


def test_the_command_line_prints_one_line_for_a_garbled_header(tmp_path):
    """As a user's terminal shows it: astropy's own logger prints warnings to stderr, which an
    in-process test does not see."""
    path = garble_naxis_cards(image(tmp_path / "aligned.fits", EXPTIME=2.0))
    out = tmp_path / "out" / "normalized.fits"
    done = subprocess.run([sys.executable, "-m", "farside_gan", "normalize", str(path), str(out)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"farside-gan normalize: error: {path}: not a readable FITS file (header card NAXIS1 is "
        "missing or garbled)"], done.stderr
    assert not out.parent.exists()


def test_a_reader_thread_refuses_it_alike(tmp_path):
    """The training loader reads from threads (which leave astropy's warnings as they are)."""
    from concurrent.futures import ThreadPoolExecutor
    path = garble_naxis_cards(image(tmp_path / "frame.fits", EXPTIME=2.0))
    with ThreadPoolExecutor(2) as pool, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputDataError, match="header card NAXIS1 is missing or garbled"):
            pool.submit(read_fits, path).result()
