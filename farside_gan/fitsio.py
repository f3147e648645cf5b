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
    path = Path(path)
    if not path.exists():
        raise InputDataError(path, "file does not exist", reason="missing_file")
    if path.stat().st_size == 0:
        raise InputDataError(path, "file is empty (0 bytes)", reason="corrupt_fits")
    try:
        with fits.open(path, memmap=False) as hdul:
            if hdu is None:
                hdu = next((i for i, h in enumerate(hdul) if h.is_image and h.data is not None
                            and h.data.ndim >= 2), None)
                if hdu is None:
                    raise InputDataError(path, "no image HDU in file", reason="corrupt_fits")
            header = hdul[hdu].header.copy()
            data = hdul[hdu].data
            if data is None:
                raise InputDataError(path, f"HDU {hdu} holds no data", reason="corrupt_fits")
            data = np.array(data)  # forces the read: a truncated file fails here, not later
    except InputDataError:
        raise
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise InputDataError(path, f"not a readable FITS file ({exc})", reason="corrupt_fits") from exc
    expected = tuple(header.get(f"NAXIS{i}") for i in range(header.get("NAXIS", 0), 0, -1))
    if data.shape != expected:
        raise InputDataError(path, f"data shape {data.shape} does not match header NAXIS {expected}",
                             reason="corrupt_fits")
    return data, header
