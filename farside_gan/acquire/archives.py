"""Archives that publish a catalog: a local directory or an HTTP server laid out like the real ones.

Both read ``catalog.csv`` and trust it only when ``catalog.csv.sha256`` vouches for every byte
(a catalog cut short in transfer would otherwise make existing frames look like missing data),
and every catalog path must stay inside the archive root (no ``..``, no absolute path, no
``//host/`` that a URL join would send to another server).
"""

from __future__ import annotations

import csv
import io
import urllib.parse
from datetime import timedelta
from pathlib import Path

from farside_gan.acquire.transfer import (BACKOFF_S, DEADLINE_S, RETRIES, TIMEOUT_S, Candidate,
                                          Deadline, DownloadError, TransientError, copy_verified,
                                          download, http_get, nearest, with_retries)
from farside_gan.core.instruments import (CATALOG_CHECKSUM_NAME, CATALOG_COLUMNS, CATALOG_NAME,
                                          SERIES, check_archive_path, check_catalog_checksum,
                                          check_channel, parse_time)


#: The columns a catalog must have; size and sha256 may be empty in a row.
REQUIRED_COLUMNS = ("instrument", "channel", "time", "path")


def parse_catalog(body: bytes, where: str) -> list[Candidate]:
    """Candidates from a verified catalog (``where``: the catalog's path or URL); a catalog
    that is not one (no header line, other columns, not text) or a row with an unsafe path or a
    bad value is an error for the whole catalog (an archive that lists such rows is not to be
    trusted)."""
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise DownloadError(f"{where}: not a text file, so not a catalog ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise DownloadError(f"{where}: empty, not a catalog (no header line naming the columns "
                            f"{', '.join(CATALOG_COLUMNS)})")
    missing = [c for c in REQUIRED_COLUMNS if c not in reader.fieldnames]
    if missing:
        shown = ", ".join(reader.fieldnames)[:80]
        raise DownloadError(f"{where}: not a catalog: its first line ({shown!r}) lacks the "
                            f"columns {', '.join(missing)}")
    out = []
    for n, row in enumerate(reader, start=2):
        try:
            out.append(Candidate(row["instrument"], row["channel"], parse_time(row["time"]),
                                 check_archive_path(row["path"]),
                                 int(row["size"]) if row.get("size") else None,
                                 row.get("sha256") or None))
        except (KeyError, TypeError, ValueError) as exc:
            raise DownloadError(f"{where}: line {n}: {exc}") from exc
    return out


class CatalogArchive:
    """Shared logic of archives that publish ``catalog.csv``."""

    def __init__(self, retries: int = RETRIES, backoff: float = BACKOFF_S,
                 deadline_s: float | None = DEADLINE_S):
        self.retries, self.backoff, self.deadline_s = retries, backoff, deadline_s
        self._catalog: list[Candidate] | None = None

    def _read(self, name: str) -> bytes:
        raise NotImplementedError

    def location_of(self, name: str) -> str:
        """Where the archive's file ``name`` is (a path or a URL), for messages."""
        raise NotImplementedError

    def series(self, instrument: str) -> str:
        return SERIES[instrument]

    def catalog(self) -> list[Candidate]:
        if self._catalog is None:
            def attempt():
                try:
                    checksum = self._read(CATALOG_CHECKSUM_NAME).decode(errors="replace")
                except DownloadError as exc:
                    raise DownloadError(f"{self}: cannot read {CATALOG_CHECKSUM_NAME} ({exc}); without "
                                        f"it a short {CATALOG_NAME} would pass for a complete one "
                                        "(archives written by farside-gan synth-archive have it)") from exc
                body = self._read(CATALOG_NAME)
                problem = check_catalog_checksum(body, checksum)
                if problem:
                    raise TransientError(problem)
                return body

            body = with_retries(attempt, f"{self} {CATALOG_NAME}", self.retries, self.backoff)
            self._catalog = parse_catalog(body, self.location_of(CATALOG_NAME))
        return self._catalog

    def search(self, instrument: str, channel, time, tolerance: timedelta) -> Candidate:
        channel = check_channel(instrument, channel)
        rows = [c for c in self.catalog()
                if c.instrument == instrument and str(c.channel) == str(channel)]
        return nearest(rows, time, tolerance, f"{self} {instrument} {channel}")


class LocalArchive(CatalogArchive):
    def __init__(self, root, **kw):
        super().__init__(**kw)
        self.root = Path(root)
        if not (self.root / CATALOG_NAME).exists():
            raise DownloadError(f"{self.root}: not an archive (no {CATALOG_NAME})")

    def __str__(self):
        return str(self.root)

    def location_of(self, name: str) -> str:
        return str(self.root / name)

    def _read(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError as exc:
            raise DownloadError(f"no {self.root / name}") from exc

    def path_of(self, candidate: Candidate) -> Path:
        root = self.root.resolve()
        path = (root / candidate.location).resolve()
        if root not in path.parents:  # e.g. a symbolic link pointing out of the archive
            raise DownloadError(f"{self.root}: catalog path {candidate.location!r} resolves to "
                                f"{path}, outside the archive")
        return path

    def fetch(self, candidate: Candidate, dest: Path, partial: Path) -> dict:
        copy_verified(self.path_of(candidate), dest, expected_size=candidate.size,
                      sha256=candidate.sha256, retries=self.retries, backoff=self.backoff)
        return {"source_file": str(candidate.location)}


class HttpArchive(CatalogArchive):
    def __init__(self, url: str, timeout: float = TIMEOUT_S, **kw):
        super().__init__(**kw)
        self.url = url if url.endswith("/") else url + "/"
        self.timeout = timeout

    def __str__(self):
        return self.url

    def location_of(self, name: str) -> str:
        return self.url_of(name)

    def url_of(self, relpath: str) -> str:
        url = urllib.parse.urljoin(self.url, urllib.parse.quote(check_archive_path(relpath)))
        if not url.startswith(self.url):
            raise DownloadError(f"{self.url}: catalog path {relpath!r} leads to {url}, outside the archive")
        return url

    def _read(self, name: str) -> bytes:
        url = self.url_of(name)
        buf = io.BytesIO()
        total = http_get(url, buf, timeout=self.timeout, deadline=Deadline(self.deadline_s, url))
        if total is not None and len(buf.getvalue()) != total:
            raise TransientError(f"{url}: truncated ({len(buf.getvalue())} of {total} bytes)")
        return buf.getvalue()

    def fetch(self, candidate: Candidate, dest: Path, partial: Path) -> dict:
        """Download to ``partial`` next to ``dest``, resuming after a dropped connection, a short
        transfer or a killed job (HTTP Range), restarting after a checksum or FITS failure."""
        download(self.url_of(str(candidate.location)), dest, partial, expected_size=candidate.size,
                 sha256=candidate.sha256, timeout=self.timeout, deadline_s=self.deadline_s,
                 retries=self.retries, backoff=self.backoff)
        return {"source_file": str(candidate.location)}
