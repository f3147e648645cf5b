"""FITS reading and atomic writing shared by every stage.

Every output is written to a temporary file in the destination directory and moved into place
with ``os.replace``, so a job killed mid-write never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

from farside_gan.errors import InputDataError


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``path``; on success move it onto ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (archive catalogs, checkpoint provenance)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_fits(path: str | os.PathLike, data: np.ndarray, header: fits.Header | None = None,
               extra_hdus: list | None = None) -> Path:
    """Write ``data`` with ``header`` as a primary HDU (plus optional extra HDUs), atomically."""
    hdus = [fits.PrimaryHDU(data=data, header=header)]
    hdus.extend(extra_hdus or [])
    with atomic_output(path, suffix=".fits") as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True, checksum=True)
    return Path(path)


def read_fits(path: str | os.PathLike, hdu: int | None = None) -> tuple[np.ndarray, fits.Header]:
    """Read image data and header, raising :class:`InputDataError` that names the file on any defect.

    With ``hdu=None`` the first HDU holding an image is used (compressed files keep it in HDU 1).
    """
    with open_image(path, hdu) as (data, header):
        return np.array(data), header.copy()


@contextlib.contextmanager
def open_image(path: str | os.PathLike, hdu: int | None = None, memmap: bool = False):
    """Yield ``(data, header)`` of an image HDU while the file is open, checked as :func:`read_fits`.

    With ``memmap=True`` an uncompressed, unscaled HDU's data is a view of the file (FITS
    byte order), valid inside the ``with`` block; copying it out is the read. A file truncated
    inside its data unit fails here either way (astropy maps or reads the whole data unit).
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(path, "file does not exist", reason="missing_file")
    if path.stat().st_size == 0:
        raise InputDataError(path, "file is empty (0 bytes)", reason="corrupt_fits")
    hdul, at = None, hdu
    with contextlib.ExitStack() as stack:
        try:
            hdul = stack.enter_context(fits.open(path, memmap=memmap))
            if hdu is None:
                for at, h in enumerate(hdul):
                    if h.is_image and h.data is not None and h.data.ndim >= 2:
                        hdu = at
                        break
                else:
                    raise InputDataError(path, "no image HDU in file", reason="corrupt_fits")
            header = hdul[hdu].header
            data = hdul[hdu].data  # read or mapped whole: a truncated data unit fails here
            if data is None:
                raise InputDataError(path, f"HDU {hdu} holds no data", reason="corrupt_fits")
        except InputDataError:
            raise
        except (OSError, ValueError, TypeError, IndexError) as exc:
            why = _truncation(path, hdul, at) or exc
            raise InputDataError(path, f"not a readable FITS file ({why})",
                                 reason="corrupt_fits") from exc
        expected = tuple(header.get(f"NAXIS{i}") for i in range(header.get("NAXIS", 0), 0, -1))
        if data.shape != expected:
            raise InputDataError(path, f"data shape {data.shape} does not match header NAXIS "
                                 f"{expected}", reason="corrupt_fits")
        yield data, header


def _truncation(path: Path, hdul, index) -> str | None:
    """Why reading image HDU ``index`` failed if the file ends inside its data (the same words
    with and without memmap, whose own errors differ), else None."""
    try:
        h = hdul[index]
        if not isinstance(h, (fits.PrimaryHDU, fits.ImageHDU)):
            return None
        end, size = hdul.fileinfo(index)["datLoc"] + h.size, path.stat().st_size
    except Exception:  # noqa: BLE001 - only a better message was at stake
        return None
    return f"truncated: {size} bytes, HDU {index}'s data ends at byte {end}" if size < end else None
