"""FITS reading and atomic writing shared by every stage.

Every output is written to a temporary file in the destination directory and moved into place
with ``os.replace``, so a job killed mid-write never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
import threading
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError

from farside_gan.core.errors import NO_SPACE_ERRNOS, InputDataError, OutputError

log = logging.getLogger(__name__)


#: A writer's temporary file is ``.{name}.{host}.{pid}.{8 hex}{suffix}`` next to the output, so
#: a later writer of the same output can tell a killed job's leftover from a live one's.
_TEMP_TAIL = r"\.(?P<host>[^.]+)\.(?P<pid>\d+)\.[0-9a-f]{8}(\.[^.]*)?$"
#: A leftover of a writer on another host (a cluster job) counts as stale after this long.
STALE_AFTER_S = 3600.0


def _host() -> str:
    return socket.gethostname().split(".")[0].replace("-", "_") or "localhost"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed writer of ``path`` left next to it; return them.

    A temporary file of this host whose process is gone is stale; one of another host is stale
    once it is :data:`STALE_AFTER_S` old (its process cannot be asked). Live writers' files stay.
    """
    path = Path(path)
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except FileNotFoundError:
        return removed
    host, now = _host(), time.time()
    pattern = re.compile(r"^\." + re.escape(path.name) + _TEMP_TAIL)
    for entry in entries:
        m = pattern.match(entry.name)
        if not m:
            continue
        try:
            if m["host"] == host:
                stale = not _alive(int(m["pid"]))
            else:
                stale = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except FileNotFoundError:
            continue
    for p in removed:
        log.info("removed %s, left by a killed job", p)
    return removed


def _create_temporary(path: Path, suffix: str) -> Path:
    """An empty new file next to ``path``, created with mode 0666 less the umask (mkstemp's
    0600 would hide results from the others sharing a project directory)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: no free temporary file name")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``path``; on success move it onto ``path``, else delete it.

    The output gets the permissions of any new file (0666 less the umask). Temporary files of
    killed earlier writers of ``path`` are removed first. Running out of space is an
    :class:`OutputError` (one line); an existing ``path`` is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        tmp = _create_temporary(path, suffix or ".part")
    except OSError as exc:  # a read-only or full file system, a directory we may not write
        raise OutputError(path, f"cannot write: {exc.strerror or exc}") from exc
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        full = _out_of_space(tmp, exc)  # asked before the partial file frees its space
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if full:
            raise OutputError(path, f"cannot write: {full}; nothing was written (an existing "
                              "file is unchanged)") from exc
        raise


#: Free space (bytes) below which a failed write is taken as the file system being full.
FULL_BELOW_BYTES = 1 << 20


def _out_of_space(tmp: Path, exc: BaseException) -> str | None:
    """Why a failed write ran out of room, or None. An errno says so (ENOSPC, EDQUOT, EFBIG),
    but astropy (an OSError without one) and torch.save (a RuntimeError) lose it, so the free
    space left next to the output is asked too."""
    if not isinstance(exc, (OSError, RuntimeError)):
        return None
    cause = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in NO_SPACE_ERRNOS:
            return os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    try:
        st = os.statvfs(tmp.parent)
    except OSError:
        return None
    if st.f_bavail * st.f_frsize < FULL_BELOW_BYTES:
        return f"no space left on device ({st.f_bavail * st.f_frsize} bytes free)"
    return None


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (archive catalogs, checkpoint provenance)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: The FITS dates and their MJD twins (WCS Paper VII). A header with a date but not its MJD makes
#: astropy's WCS fill the MJD in, with a FITSFixedWarning ('datfix'), every time it is read.
MJD_KEYWORDS = {"DATE-OBS": "MJD-OBS", "DATE-BEG": "MJD-BEG", "DATE-AVG": "MJD-AVG",
                "DATE-END": "MJD-END"}


def set_mjd_keywords(header: fits.Header) -> fits.Header:
    """Write MJD-OBS (MJD-BEG, -AVG, -END) from DATE-OBS (DATE-BEG, -AVG, -END), UTC, in place."""
    from astropy.time import Time

    for date, mjd in MJD_KEYWORDS.items():
        if header.get(date):
            header.set(mjd, Time(str(header[date]), scale="utc").mjd, f"[d] {date} as MJD",
                       after=date)
    return header


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
def open_image(path: str | os.PathLike, hdu: int | None = None, memmap: bool = False,
               layout: dict | None = None):
    """Yield ``(data, header)`` of an image HDU while the file is open, checked as :func:`read_fits`.

    With ``memmap=True`` an uncompressed, unscaled HDU's data is a view of the file (FITS
    byte order), valid inside the ``with`` block; copying it out is the read. A file truncated
    inside its data unit fails here either way (astropy maps or reads the whole data unit).
    A ``layout`` dict receives the data's byte ``offset``, ``shape`` and file ``dtype`` as the
    header gives them (for :class:`MappedImages`, which checks them against the data).
    """
    path = _existing(path)
    hdul, at = None, hdu
    with contextlib.ExitStack() as stack:
        try:
            with _parse_warnings(path):
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
        except UNREADABLE as exc:
            why = _truncation(path, hdul, at) or _unreadable(exc)
            raise InputDataError(path, f"not a readable FITS file ({why})",
                                 reason="corrupt_fits") from exc
        expected = tuple(header.get(f"NAXIS{i}") for i in range(header.get("NAXIS", 0), 0, -1))
        if data.shape != expected:
            raise InputDataError(path, f"data shape {data.shape} does not match header NAXIS "
                                 f"{expected}", reason="corrupt_fits")
        if layout is not None and _stored_raw(hdul[hdu], header):
            layout.update(offset=hdul.fileinfo(hdu)["datLoc"], shape=data.shape,
                          dtype=_RAW_DTYPES[header["BITPIX"]])
        yield data, header


def read_header(path: str | os.PathLike, hdu: int = 0) -> fits.Header:
    """The header of HDU ``hdu`` without reading the data, refused as :func:`read_fits` refuses
    a file: an :class:`InputDataError` naming it."""
    with open_fits(path) as hdul:
        try:
            return hdul[hdu].header.copy()
        except IndexError:
            raise InputDataError(path, f"has no HDU {hdu}", reason="corrupt_fits") from None


@contextlib.contextmanager
def open_fits(path: str | os.PathLike):
    """Yield the file's ``HDUList`` (astropy's, lazily read), refused as :func:`read_fits`
    refuses a file, also when reading an HDU inside the ``with`` block fails."""
    path = _existing(path)
    try:
        with _parse_warnings(path), fits.open(path) as hdul:
            yield hdul
    except UNREADABLE as exc:
        raise InputDataError(path, f"not a readable FITS file ({_unreadable(exc)})",
                             reason="corrupt_fits") from exc


#: What astropy raises on a file that is not FITS or whose header is garbled: a garbled NAXISn
#: card is a KeyError ("Keyword 'NAXIS1' not found.") from deep inside ``fits.open``.
UNREADABLE = (OSError, ValueError, TypeError, IndexError, KeyError, VerifyError)


def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputDataError(path, "file does not exist", reason="missing_file")
    if path.is_dir():
        raise InputDataError(path, "is a directory, not a FITS file", reason="corrupt_fits")
    if path.stat().st_size == 0:
        raise InputDataError(path, "file is empty (0 bytes)", reason="corrupt_fits")
    return path


def _unreadable(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        keyword = re.search(r"Keyword '([^']*)'", str(exc))
        return (f"header card {keyword[1]} is missing or garbled" if keyword
                else f"header lacks {exc}")
    return _one_line(str(exc))


def _one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line of printable ASCII (a garbled card's bytes include newlines)."""
    text = re.sub(r"[^\x20-\x7e]", "?", " ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "..."


_WARNED: dict = {}  # warnings shown again once each, as at their origin


@contextlib.contextmanager
def _parse_warnings(path: Path):
    """Hold back astropy's warnings while a file is opened: a file that is refused gets one line
    (the refusal; a garbled card's warnings would print its binary bytes over many lines), a
    file that is read gets each warning again, on one line of printable text. Only in the main
    thread (a command's): the warnings state is the process's, and the training loader's reader
    threads must neither switch it under each other nor wait for one another."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        warnings.warn_explicit(_one_line(str(w.message), limit=1000), w.category, w.filename,
                               w.lineno, registry=_WARNED, source=w.source)


_RAW_DTYPES = {8: np.dtype("u1"), 16: np.dtype(">i2"), 32: np.dtype(">i4"), 64: np.dtype(">i8"),
               -32: np.dtype(">f4"), -64: np.dtype(">f8")}


def _stored_raw(h, header) -> bool:
    return type(h) in (fits.PrimaryHDU, fits.ImageHDU) and header.get("BITPIX") in _RAW_DTYPES


class MappedImages:
    """Image data of FITS files, memory-mapped once each file's header has been parsed.

    The first :meth:`open` of a file reads it through :func:`open_image` with all its checks
    and remembers where the raw data lies, keyed by the file's size and modification time; later
    opens of the unchanged file map that byte range directly. A training loader reads every
    file once per epoch from several threads, and astropy's header parsing holds Python's
    global lock for each file, stalling the thread that launches the GPU's work. Scaled or
    compressed data always goes through astropy.
    """

    def __init__(self):
        self._layouts: dict[Path, tuple] = {}

    @contextlib.contextmanager
    def open(self, path: str | os.PathLike):
        """Yield the first image HDU's data (FITS byte order) of ``path``, as :func:`open_image`."""
        path = Path(path)
        try:
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns)
        except OSError:
            key = None
        known = self._layouts.get(path)
        if key is not None and known is not None and known[0] == key:
            _, offset, shape, dtype = known
            yield np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
            return
        layout: dict = {}
        # Not memory-mapped the first time: astropy refuses to map scaled data, and reads it.
        with open_image(path, layout=layout) as (data, _):
            yield data
            if layout and key is not None and _maps_to(path, layout, data):
                self._layouts[path] = (key, layout["offset"], layout["shape"], layout["dtype"])


def _maps_to(path: Path, layout: dict, data: np.ndarray) -> bool:
    """Whether the remembered byte range holds exactly ``data`` (astropy rewrites the header of
    scaled data on reading, so the header alone cannot tell); checked once per file."""
    try:
        mapped = np.memmap(path, dtype=layout["dtype"], mode="r", offset=layout["offset"],
                           shape=layout["shape"])
    except (OSError, ValueError):
        return False
    return mapped.dtype == data.dtype and np.array_equal(mapped, data, equal_nan=True)


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
