"""Moving one file from an archive to disk: bounded in time, resumable, verified.

Every source (catalog archives, JSOC exports, Fido) ends here or in :func:`verify_file`:

* **Retries** (:func:`with_retries`): transient failures (HTTP 429 and 5xx, dropped connections,
  short or damaged transfers, JSOC's "too many requests") are retried with exponential backoff,
  waiting at least what the server's ``Retry-After`` asks.
* **Deadline**: one file gets ``deadline_s`` seconds over all its attempts. The body is read
  in pieces of at most one socket read, so a server trickling a byte every few seconds (which
  never trips the per-read ``timeout``) is cut off at the deadline.
* **Resume**: bytes arrive in a partial file kept next to the destination (``.frame.fits.part``);
  a dropped connection, a killed job or an expired deadline leave it there, and the next
  attempt (or the next run) asks for the rest with an HTTP Range request. Bytes that cannot
  begin a FITS file (a server's error page sent with status 200) and a file that failed
  verification are discarded, never resumed from.
* **Verify**: size (catalog or Content-Length), sha256 where the archive publishes one, the
  FITS CHECKSUM/DATASUM where the file carries them, and that it opens as FITS; only then is
  it moved onto the destination. Transport damage restarts the file; a file the archive
  itself vouches for (sha256 matches) but that is bad is an :class:`InputDataError`.
"""

from __future__ import annotations

import http.client
import logging
import math
import os
import socket
import time as _time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from farside_gan.core.errors import FarsideError, InputDataError, NoDataError
from farside_gan.core.fitsio import read_fits, sha256_of

log = logging.getLogger(__name__)

RETRIES = 4
BACKOFF_S = 0.5
TIMEOUT_S = 60.0        # one socket read
DEADLINE_S = 900.0      # one file, all attempts together
MAX_RETRY_AFTER_S = 600.0
CHUNK = 1 << 16
_sleep = _time.sleep  # the backoff's sleep (tests replace it to see the delays)


class DownloadError(FarsideError):
    """A source could not be reached or kept failing after all retries (not a data problem)."""


class TransientError(Exception):
    """A failure worth retrying: server error, dropped connection, truncated transfer, busy
    server. ``retry_after``: seconds the server asked us to wait, if it said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Deadline:
    """``seconds`` from now (None: no deadline), for one file's attempts together."""

    def __init__(self, seconds: float | None, what: str):
        self.seconds, self.what = seconds, what
        self.end = None if seconds is None else _time.monotonic() + float(seconds)

    def remaining(self) -> float:
        return math.inf if self.end is None else self.end - _time.monotonic()

    def check(self) -> None:
        if self.remaining() <= 0:
            raise DownloadError(f"{self.what}: not complete within the {self.seconds:g} s deadline "
                                "(what arrived is kept; a rerun resumes it)")


def with_retries(action, what: str, retries: int = RETRIES, backoff: float = BACKOFF_S,
                 deadline: Deadline | None = None):
    """Call ``action()``; on :class:`TransientError` retry with exponential backoff (at least the
    server's Retry-After), within ``deadline``."""
    for attempt in range(retries + 1):
        if deadline is not None:
            deadline.check()
        try:
            return action()
        except TransientError as exc:
            if attempt == retries:
                raise DownloadError(f"{what}: failed after {retries + 1} attempts ({exc})") from exc
            delay = backoff * 2 ** attempt
            if exc.retry_after is not None:
                delay = max(delay, min(exc.retry_after, MAX_RETRY_AFTER_S))
            if deadline is not None and delay >= deadline.remaining():
                raise DownloadError(f"{what}: {exc}; the {deadline.seconds:g} s deadline leaves no "
                                    "time for another attempt") from exc
            log.warning("%s: %s; retry %d/%d in %.1f s", what, exc, attempt + 1, retries, delay)
            _sleep(delay)


def retry_after_s(value) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; an HTTP date is ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def transient_http(exc: urllib.error.HTTPError) -> bool:
    return exc.code == 429 or exc.code >= 500


class RangeNotSatisfiable(Exception):
    """HTTP 416 on a resume: the partial file is complete already, or not a prefix."""


def http_get(url: str, sink, offset: int = 0, timeout: float = TIMEOUT_S,
             deadline: Deadline | None = None, progress: bool = False) -> int | None:
    """GET ``url`` into ``sink`` from byte ``offset`` (a Range request when > 0).

    Returns the resource's total size if announced. Bytes received before a failure are in
    ``sink`` when the :class:`TransientError` is raised, so the next attempt resumes. When the
    server ignores the range, the sink is rewound and the file restarts."""
    from tqdm import tqdm

    request = urllib.request.Request(url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    deadline = deadline or Deadline(None, url)
    try:
        with urllib.request.urlopen(request, timeout=min(timeout, max(deadline.remaining(), 0.001))) \
                as response:
            length = response.headers.get("Content-Length")
            content_range = response.headers.get("Content-Range", "")
            resumed = response.status == 206 and content_range.startswith(f"bytes {offset}-")
            if resumed:
                total = int(content_range.rsplit("/", 1)[1]) if "/" in content_range and \
                    not content_range.endswith("*") else None
            else:
                sink.seek(0)
                sink.truncate()
                total = int(length) if length is not None else None
            # disable=None: a bar on a terminal only, never in workflow logs
            with tqdm(total=total, initial=offset if resumed else 0, unit="B", unit_scale=True,
                      desc=url.rsplit("/", 1)[-1], disable=None if progress else True,
                      leave=False) as bar:
                while True:
                    if deadline.remaining() <= 0:
                        raise DownloadError(f"{url}: not complete within the {deadline.seconds:g} s "
                                            f"deadline ({sink.tell()} bytes arrived and are kept)")
                    try:
                        # read1: at most one socket read, so the deadline is checked between reads
                        chunk = response.read1(CHUNK)
                    except http.client.IncompleteRead as exc:
                        sink.write(exc.partial)  # keep what arrived: resume from there
                        raise
                    if not chunk:
                        break
                    sink.write(chunk)
                    bar.update(len(chunk))
            return total
    except urllib.error.HTTPError as exc:
        if transient_http(exc):
            raise TransientError(f"HTTP {exc.code} {exc.reason}",
                                 retry_after_s(exc.headers.get("Retry-After"))) from exc
        if exc.code == 416 and offset:
            raise RangeNotSatisfiable(url) from exc
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError,
            socket.timeout, TimeoutError) as exc:
        raise TransientError(f"{type(exc).__name__}: {exc}") from exc


def fits_checksum_problem(path) -> str | None:
    """The FITS CHECKSUM/DATASUM failure of a file, or None (also when it carries none)."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(path, checksum=True) as hdul:
                hdul.readall()
    except Exception:  # unreadable: read_fits says how, with the file name
        return None
    failed = [str(w.message).strip() for w in caught if "verification failed" in str(w.message)]
    return "; ".join(failed) or None


def verify_file(path: Path, expected_size: int | None, sha256: str | None, name: str) -> None:
    """Raise :class:`TransientError` for transport damage, :class:`InputDataError` for a file the
    archive vouches for (sha256) that is bad anyway; return when the file is complete FITS."""
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise TransientError(f"{name}: got {size} bytes, expected {expected_size} (truncated)")
    if sha256 and sha256_of(path) != sha256:
        raise TransientError(f"{name}: sha256 mismatch (damaged transfer)")
    problem = fits_checksum_problem(path)
    if problem:
        if sha256:
            raise InputDataError(name, f"FITS checksum fails in the archive's own file ({problem})",
                                 reason="corrupt_fits")
        raise TransientError(f"{name}: {problem} (damaged transfer)")
    try:
        read_fits(path)
    except InputDataError as exc:
        if sha256:  # the archive's own file is bad: a data problem, not a transfer one
            raise InputDataError(name, exc.problem, reason=exc.reason) from exc
        raise TransientError(f"{name}: {exc.problem}") from exc


#: The first bytes of every FITS file (its first card, "SIMPLE  =   T").
FITS_SIGNATURE = b"SIMPLE  ="


def not_fits_start(path: Path, name: str) -> str | None:
    """Why the bytes of ``path`` cannot be the start of a FITS file (an error page a server
    sent with status 200, say), or None when they can (or there are none)."""
    with open(path, "rb") as fh:
        head = fh.read(len(FITS_SIGNATURE))
    if head == FITS_SIGNATURE[:len(head)]:
        return None
    with open(path, "rb") as fh:
        shown = fh.read(60)
    return (f"{name}: the server answered with something that is not a FITS file (it begins "
            f"{shown!r}); discarded, not resumed from")


def download(url: str, dest: Path, partial: Path, *, expected_size: int | None = None,
             sha256: str | None = None, name: str | None = None, timeout: float = TIMEOUT_S,
             deadline_s: float | None = DEADLINE_S, retries: int = RETRIES,
             backoff: float = BACKOFF_S, progress: bool = True, identity: str | None = None) -> Path:
    """Download ``url`` to ``dest`` through ``partial``, resuming what ``partial`` holds.

    ``dest`` appears only once the file is verified; ``partial`` stays after a failure so the
    next call resumes it. ``identity`` names the file the partial bytes belong to (default: the
    URL; a JSOC export's record, whose URL changes with each export): bytes of another file
    are discarded instead of being resumed."""
    name = name or url
    dest, partial = Path(dest), Path(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    owner = partial.with_name(partial.name + ".src")
    identity = identity or url
    if not partial.exists() or not owner.exists() or owner.read_text() != identity:
        partial.write_bytes(b"")
        owner.write_text(identity)
    elif not_fits_start(partial, name):  # e.g. an error page an earlier run kept
        partial.write_bytes(b"")
    deadline = Deadline(deadline_s, name)

    def attempt():
        complete = False
        try:
            with open(partial, "r+b") as sink:
                sink.seek(0, os.SEEK_END)
                offset = sink.tell()
                if expected_size is not None and offset >= expected_size:
                    complete = True  # a previous run got every byte and died before moving it
                    total = expected_size
                else:
                    try:
                        total = http_get(url, sink, offset=offset, timeout=timeout,
                                         deadline=deadline, progress=progress)
                    except RangeNotSatisfiable:
                        complete, total = True, offset
        except (TransientError, DownloadError):
            if not_fits_start(partial, name):  # what arrived is not the file: nothing to resume
                partial.write_bytes(b"")
            raise
        problem = not_fits_start(partial, name)
        if problem:
            partial.write_bytes(b"")
            raise TransientError(problem)
        got = partial.stat().st_size
        expected = expected_size if expected_size is not None else total
        if expected is not None and got < expected:
            raise TransientError(f"got {got} of {expected} bytes (short transfer); resuming")
        try:
            verify_file(partial, expected, sha256, name)
        except (TransientError, InputDataError):
            partial.write_bytes(b"")  # damaged or bad, not just short: never resumed from
            if complete:
                log.info("%s: the kept partial file did not verify; downloading it again", name)
            raise
        os.replace(partial, dest)
        owner.unlink(missing_ok=True)
        return dest

    return with_retries(attempt, name, retries, backoff, deadline)


def copy_verified(src: Path, dest: Path, *, expected_size: int | None, sha256: str | None,
                  retries: int = RETRIES, backoff: float = BACKOFF_S) -> Path:
    """Copy a local archive file to ``dest`` through a temporary file, verified as a download
    (``fitsio.atomic_output``: the umask's permissions, a killed copy's temporary cleaned)."""
    import shutil

    from farside_gan.core.fitsio import atomic_output

    def attempt():
        if not src.exists():
            raise InputDataError(src, "listed in the catalog but missing", reason="missing_file")
        with atomic_output(dest, suffix=".part") as tmp:
            shutil.copyfile(src, tmp)
            verify_file(Path(tmp), expected_size, sha256, str(src))
        return dest

    return with_retries(attempt, str(src), retries, backoff)


@dataclass
class Candidate:
    """One file a source offers: what it is and where it lives (path, URL or record)."""
    instrument: str
    channel: object
    time: datetime
    location: object
    size: int | None = None
    sha256: str | None = None
    quality: int | None = None


def nearest(candidates, time: datetime, tolerance: timedelta, what: str) -> Candidate:
    """The candidate nearest ``time`` within ``tolerance``; unflagged ones (``quality`` 0 or
    unknown) first, a flagged one only when nothing else is there (its drop is then recorded)."""
    inside = [c for c in candidates if abs(c.time - time) <= tolerance]
    if not inside:
        raise NoDataError(what, f"no observation within {tolerance} of {time:%Y-%m-%dT%H:%M:%S}")
    clean = [c for c in inside if not c.quality]
    return min(clean or inside, key=lambda c: (abs(c.time - time), c.time))
