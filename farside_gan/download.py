"""Find and fetch the observation nearest a time, from a configurable source.

Sources (``open_source(spec)``):

* a local archive directory (``layout`` names, ``catalog.csv``);
* an HTTP archive ``http://127.0.0.1:PORT/`` laid out the same way (a mirror, or the test server);
* ``fido``: sunpy's Fido (VSO for EUVI, AIA and HMI), files fetched by parfive;
* ``jsoc``: JSOC through drms (``aia.lev1_euv_12s``, ``hmi.M_720s``), with the user's export email.

Every download goes to a temporary file next to its destination, is verified (size and sha256
where the archive publishes them, then it must open as FITS) and only then moved into place, so
a killed or failed download leaves nothing at the output path. Transient failures (HTTP 5xx,
dropped connections, truncated transfers) are retried with exponential backoff; a short
transfer resumes with an HTTP Range request (HTTP archive), a damaged one restarts. A time with
no observation within the tolerance is a :class:`~farside_gan.errors.NoDataError`, recorded by
:func:`fetch_observation`, not a crash.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time as _time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from farside_gan.errors import FarsideError, InputDataError, NoDataError
from farside_gan.fitsio import atomic_output, read_fits, sha256_of
from farside_gan.layout import CATALOG_NAME, check_channel
from farside_gan.quality import check_file, parse_time, reference_time, utc_time

log = logging.getLogger(__name__)

RETRIES = 4
BACKOFF_S = 0.5
TIMEOUT_S = 60


class DownloadError(FarsideError):
    """A source could not be reached or kept failing after all retries (not a data problem)."""


class TransientError(Exception):
    """A failure worth retrying: server error, dropped connection, truncated transfer."""


def parse_duration(text: str | float | timedelta) -> timedelta:
    """'90s', '6m', '1h', '2d', combinations like '1d12h', or a number of seconds -> timedelta."""
    if isinstance(text, timedelta):
        return text
    text = str(text).strip()
    if re.fullmatch(r"[0-9.]+", text):
        return timedelta(seconds=float(text))
    if not re.fullmatch(r"(\s*[0-9.]+\s*[smhd])+\s*", text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 6m, 1h, 2d, 1d12h)")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return timedelta(seconds=sum(float(v) * seconds[u]
                                 for v, u in re.findall(r"([0-9.]+)\s*([smhd])", text)))


def times_at_cadence(start, end, cadence) -> list[datetime]:
    """Times from ``start`` to ``end`` inclusive every ``cadence`` (e.g. '12h')."""
    t, stop, step = parse_time(start), parse_time(end), parse_duration(cadence)
    out = []
    while t <= stop:
        out.append(t)
        t += step
    return out


def with_retries(action, what: str, retries: int = RETRIES, backoff: float = BACKOFF_S):
    """Call ``action()``; on :class:`TransientError` retry with exponential backoff."""
    for attempt in range(retries + 1):
        try:
            return action()
        except TransientError as exc:
            if attempt == retries:
                raise DownloadError(f"{what}: failed after {retries + 1} attempts ({exc})") from exc
            delay = backoff * 2 ** attempt
            log.warning("%s: %s; retry %d/%d in %.1f s", what, exc, attempt + 1, retries, delay)
            _time.sleep(delay)



@dataclass
class Candidate:
    """One file a source offers: what it is and where it lives (path, URL or client record)."""
    instrument: str
    channel: object
    time: datetime
    location: object
    size: int | None = None
    sha256: str | None = None


def nearest(candidates, time: datetime, tolerance: timedelta, what: str) -> Candidate:
    inside = [c for c in candidates if abs(c.time - time) <= tolerance]
    if not inside:
        raise NoDataError(what, f"no observation within {tolerance} of {time:%Y-%m-%dT%H:%M:%S}")
    return min(inside, key=lambda c: (abs(c.time - time), c.time))


def _verify_into(tmp: Path, dest: Path, candidate: Candidate, name: str) -> None:
    """Check a downloaded temporary file and move it onto ``dest``; transport damage is transient."""
    size = tmp.stat().st_size
    if candidate.size is not None and size != candidate.size:
        raise TransientError(f"{name}: got {size} bytes, expected {candidate.size} (truncated)")
    if candidate.sha256 and sha256_of(tmp) != candidate.sha256:
        raise TransientError(f"{name}: sha256 mismatch (damaged transfer)")
    try:
        read_fits(tmp)
    except InputDataError as exc:
        if candidate.sha256:  # the archive's own file is bad: a data problem, not a transfer one
            raise InputDataError(name, exc.problem, reason=exc.reason) from exc
        raise TransientError(f"{name}: {exc.problem}") from exc
    os.replace(tmp, dest)


class _CatalogSource:
    """Shared logic of archives that publish ``catalog.csv``."""

    def __init__(self, retries: int = RETRIES, backoff: float = BACKOFF_S):
        self.retries, self.backoff = retries, backoff
        self._catalog: list[Candidate] | None = None

    def _catalog_text(self) -> str:
        raise NotImplementedError

    def catalog(self) -> list[Candidate]:
        if self._catalog is None:
            rows = csv.DictReader(io.StringIO(self._catalog_text()))
            self._catalog = [
                Candidate(r["instrument"], r["channel"], parse_time(r["time"]), r["path"],
                          int(r["size"]) if r.get("size") else None, r.get("sha256") or None)
                for r in rows]
        return self._catalog

    def search(self, instrument: str, channel, time: datetime, tolerance: timedelta) -> Candidate:
        channel = check_channel(instrument, channel)
        rows = [c for c in self.catalog()
                if c.instrument == instrument and str(c.channel) == str(channel)]
        return nearest(rows, time, tolerance, f"{self} {instrument} {channel}")


class LocalArchive(_CatalogSource):
    def __init__(self, root, **kw):
        super().__init__(**kw)
        self.root = Path(root)
        if not (self.root / CATALOG_NAME).exists():
            raise DownloadError(f"{self.root}: not an archive (no {CATALOG_NAME})")

    def __str__(self):
        return str(self.root)

    def _catalog_text(self) -> str:
        return (self.root / CATALOG_NAME).read_text()

    def fetch(self, candidate: Candidate, dest: Path) -> Path:
        src = self.root / candidate.location

        def attempt():
            if not src.exists():
                raise InputDataError(src, "listed in the catalog but missing", reason="missing_file")
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
            os.close(fd)
            try:
                shutil.copyfile(src, tmp)
                _verify_into(Path(tmp), dest, candidate, str(src))
            finally:
                Path(tmp).unlink(missing_ok=True)
            return dest

        return with_retries(attempt, str(src), self.retries, self.backoff)


class HttpArchive(_CatalogSource):
    def __init__(self, url: str, timeout: float = TIMEOUT_S, **kw):
        super().__init__(**kw)
        self.url = url if url.endswith("/") else url + "/"
        self.timeout = timeout

    def __str__(self):
        return self.url

    def _get(self, url: str, sink, offset: int = 0, progress: bool = False) -> tuple[int | None, bool]:
        """GET ``url`` into ``sink`` (from byte ``offset`` with a Range request when > 0).

        Returns (total size of the resource if announced, whether the server resumed at
        ``offset``). Bytes received before a dropped connection are written before the
        :class:`TransientError`, so the next attempt can resume. When the server ignores the
        range the sink is rewound and the file restarts."""
        from tqdm import tqdm

        request = urllib.request.Request(url)
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
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
                        try:
                            chunk = response.read(1 << 16)
                        except http.client.IncompleteRead as exc:
                            sink.write(exc.partial)  # keep what arrived: resume from there
                            raise
                        if not chunk:
                            break
                        sink.write(chunk)
                        bar.update(len(chunk))
                return total, resumed
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code == 429:
                raise TransientError(f"HTTP {exc.code} {exc.reason}") from exc
            if exc.code == 416 and offset:  # our partial file is not a prefix: restart
                sink.seek(0)
                sink.truncate()
                raise TransientError("HTTP 416 on resume; restarting the file") from exc
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError,
                socket.timeout, TimeoutError) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc

    def _catalog_text(self) -> str:
        url = urllib.parse.urljoin(self.url, CATALOG_NAME)

        def attempt():
            buf = io.BytesIO()
            total, _ = self._get(url, buf)
            if total is not None and len(buf.getvalue()) != total:
                raise TransientError(f"{url}: truncated ({len(buf.getvalue())} of {total} bytes)")
            return buf.getvalue().decode()

        return with_retries(attempt, url, self.retries, self.backoff)

    def fetch(self, candidate: Candidate, dest: Path) -> Path:
        """Download to a temporary file next to ``dest``, resuming after a dropped connection
        or short transfer (HTTP Range), restarting after a checksum or FITS failure."""
        url = urllib.parse.urljoin(self.url, urllib.parse.quote(str(candidate.location)))
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)

        def attempt():
            with open(tmp, "r+b") as sink:
                sink.seek(0, os.SEEK_END)
                offset = sink.tell()
                total, _ = self._get(url, sink, offset=offset, progress=True)
            expected = candidate.size if candidate.size is not None else total
            got = tmp.stat().st_size
            if expected is not None and got < expected:
                raise TransientError(f"got {got} of {expected} bytes (short transfer); resuming")
            try:
                _verify_into(tmp, dest, candidate, url)
            except TransientError:
                tmp.write_bytes(b"")  # damaged, not just short: start over
                raise
            return dest

        try:
            os.close(fd)
            return with_retries(attempt, url, self.retries, self.backoff)
        finally:
            tmp.unlink(missing_ok=True)


class FidoSource:
    """sunpy Fido: VSO (and the providers Fido knows) for AIA, HMI and EUVI; parfive downloads."""

    def __init__(self, retries: int = RETRIES, backoff: float = BACKOFF_S):
        self.retries, self.backoff = retries, backoff

    def __str__(self):
        return "fido"

    @staticmethod
    def query_attrs(instrument: str, channel, time: datetime, tolerance: timedelta) -> list:
        import astropy.units as u
        from sunpy.net import attrs as a

        attrs = [a.Time(time - tolerance, time + tolerance)]
        if instrument == "aia":
            attrs += [a.Instrument("AIA"), a.Wavelength(int(channel) * u.angstrom),
                      a.Level(1)]
        elif instrument == "hmi":
            attrs += [a.Instrument("HMI"), a.Physobs("LOS_magnetic_field")]
        elif instrument in ("euvi_a", "euvi_b"):
            attrs += [a.Instrument("EUVI"), a.Source("STEREO_" + instrument[-1].upper()),
                      a.Wavelength(int(channel) * u.angstrom)]
        else:
            raise ValueError(f"unknown instrument {instrument!r}")
        return attrs

    def search(self, instrument, channel, time, tolerance) -> Candidate:
        from sunpy.net import Fido

        channel = check_channel(instrument, channel)
        what = f"fido {instrument} {channel}"
        try:
            result = with_retries(lambda: self._search(Fido, instrument, channel, time, tolerance),
                                  what, self.retries, self.backoff)
        except DownloadError:
            raise
        rows = []
        for block in result:
            for i, row in enumerate(block):
                start = row["Start Time"]
                rows.append(Candidate(instrument, channel, parse_time(start.isot), block[i:i + 1]))
        return nearest(rows, time, tolerance, what)

    @staticmethod
    def _search(fido, instrument, channel, time, tolerance):
        try:
            return fido.search(*FidoSource.query_attrs(instrument, channel, time, tolerance))
        except (ConnectionError, OSError, TimeoutError) as exc:
            raise TransientError(str(exc)) from exc

    def fetch(self, candidate: Candidate, dest: Path) -> Path:
        from sunpy.net import Fido

        def attempt():
            with tempfile.TemporaryDirectory(prefix=".fido.", dir=dest.parent) as tmpdir:
                files = Fido.fetch(candidate.location, path=os.path.join(tmpdir, "{file}"),
                                   progress=False, overwrite=True)
                if files.errors or not files:
                    raise TransientError(f"Fido.fetch: {files.errors}")
                _verify_into(Path(files[0]), dest, candidate, str(files[0]))
            return dest

        return with_retries(attempt, f"fido {candidate.instrument} {candidate.channel}",
                            self.retries, self.backoff)


class JsocSource:
    """JSOC through drms: ``aia.lev1_euv_12s`` and ``hmi.M_720s``, exported as FITS by URL."""

    SERIES = {"aia": "aia.lev1_euv_12s", "hmi": "hmi.M_720s"}

    def __init__(self, email: str | None, retries: int = RETRIES, backoff: float = BACKOFF_S):
        if not email:
            raise DownloadError("jsoc: a JSOC-registered export email is required (--jsoc-email)")
        self.email, self.retries, self.backoff = email, retries, backoff

    def __str__(self):
        return "jsoc"

    @classmethod
    def record_set(cls, instrument: str, channel, start: datetime, end: datetime) -> str:
        """drms record-set string for the time window, e.g. aia.lev1_euv_12s[t0-t1][171]."""
        if instrument not in cls.SERIES:
            raise ValueError(f"JSOC serves {sorted(cls.SERIES)}, not {instrument!r}")
        window = f"[{start:%Y.%m.%d_%H:%M:%S}_UTC-{end:%Y.%m.%d_%H:%M:%S}_UTC]"
        if instrument == "aia":
            return f"{cls.SERIES['aia']}{window}[{int(channel)}]"
        return f"{cls.SERIES['hmi']}{window}"

    @classmethod
    def export_spec(cls, instrument: str, channel, t_rec: str) -> str:
        if instrument == "aia":
            return f"{cls.SERIES['aia']}[{t_rec}][{int(channel)}]{{image}}"
        return f"{cls.SERIES['hmi']}[{t_rec}]{{magnetogram}}"

    def _client(self):
        import drms
        return drms.Client(email=self.email)

    def search(self, instrument, channel, time, tolerance) -> Candidate:
        channel = check_channel(instrument, channel)
        if instrument not in self.SERIES:
            raise DownloadError(f"jsoc serves {sorted(self.SERIES)}, not {instrument}; use fido for EUVI")
        ds = self.record_set(instrument, channel, time - tolerance, time + tolerance)

        def query():
            import drms
            try:
                return self._client().query(ds, key="T_REC,T_OBS,QUALITY")
            except (ConnectionError, OSError, TimeoutError) as exc:
                raise TransientError(str(exc)) from exc
            except drms.DrmsError as exc:
                raise DownloadError(f"jsoc {ds}: {exc}") from exc

        keys = with_retries(query, f"jsoc {ds}", self.retries, self.backoff)
        rows, clean = [], []
        for _, rec in keys.iterrows():
            t_obs = str(rec["T_OBS"])
            if "MISSING" in t_obs or not t_obs.strip():
                continue
            candidate = Candidate(instrument, channel, utc_time(t_obs), str(rec["T_REC"]))
            rows.append(candidate)
            if int(rec.get("QUALITY", 0) or 0) == 0:
                clean.append(candidate)
        # prefer an unflagged record within the tolerance; a flagged one is fetched (and its
        # drop recorded) only if nothing else is there
        try:
            return nearest(clean, time, tolerance, f"jsoc {ds}")
        except NoDataError:
            return nearest(rows, time, tolerance, f"jsoc {ds}")

    def fetch(self, candidate: Candidate, dest: Path) -> Path:
        spec = self.export_spec(candidate.instrument, candidate.channel, candidate.location)

        def attempt():
            try:
                request = self._client().export(spec, method="url", protocol="fits")
                request.wait()
                with tempfile.TemporaryDirectory(prefix=".jsoc.", dir=dest.parent) as tmpdir:
                    table = request.download(tmpdir)
                    if len(table) == 0 or not table["download"][0]:
                        raise TransientError(f"export {request.id} downloaded nothing")
                    _verify_into(Path(table["download"][0]), dest, candidate, spec)
            except (ConnectionError, OSError, TimeoutError) as exc:
                raise TransientError(str(exc)) from exc
            except drms.DrmsError as exc:
                raise DownloadError(f"jsoc export {spec}: {exc}") from exc
            return dest

        import drms
        return with_retries(attempt, f"jsoc {spec}", self.retries, self.backoff)


def open_source(spec: str, jsoc_email: str | None = None, retries: int = RETRIES,
                backoff: float = BACKOFF_S):
    """A source from its spec: archive directory, http(s) URL, 'fido' or 'jsoc'."""
    if spec == "fido":
        return FidoSource(retries, backoff)
    if spec == "jsoc":
        return JsocSource(jsoc_email, retries, backoff)
    if spec.startswith(("http://", "https://")):
        return HttpArchive(spec, retries=retries, backoff=backoff)
    if Path(spec).is_dir():
        return LocalArchive(spec, retries=retries, backoff=backoff)
    raise DownloadError(f"source {spec!r} is neither an archive directory, an http URL, 'fido' nor 'jsoc'")


RECORD_NAME = "record.json"
FRAME_NAME = "frame.fits"


def write_record(path, record: dict) -> Path:
    with atomic_output(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return Path(path)


def fetch_observation(source, instrument: str, channel, time, tolerance, out_dir,
                      jsoc_email: str | None = None, eclipse_periods=None,
                      retries: int = RETRIES, backoff: float = BACKOFF_S) -> dict:
    """Fetch and quality-check the frame nearest ``time``; always writes ``out_dir/record.json``.

    ``out_dir/frame.fits`` (the raw file, unmodified) exists only when the record's status is
    'ok'. Data problems (no data, bad file, failed quality check) give a 'dropped' record with
    a reason code; unreachable sources raise :class:`DownloadError`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = out_dir / FRAME_NAME
    frame.unlink(missing_ok=True)
    requested = parse_time(time)
    channel = check_channel(instrument, channel)
    src = open_source(source, jsoc_email, retries, backoff) if isinstance(source, str) else source
    record = {"status": "ok", "reason": "", "detail": "", "instrument": instrument,
              "channel": str(channel), "requested_time": requested.isoformat(),
              "obs_time": None, "source": str(src), "source_file": None, "frame": None}
    try:
        candidate = src.search(instrument, channel, requested, parse_duration(tolerance))
        record["source_file"] = str(candidate.location) if isinstance(candidate.location, str) else None
        record["obs_time"] = candidate.time.isoformat()
        tmp_frame = out_dir / f".{FRAME_NAME}.download"
        try:
            src.fetch(candidate, tmp_frame)
            data, header = check_file(tmp_frame, instrument, channel, eclipse_periods)
            obs = header.get("DATE-OBS") or header.get("DATE_OBS")
            record["obs_time"] = parse_time(obs).isoformat()
            record["reference_time"] = reference_time(header).isoformat()
            os.replace(tmp_frame, frame)
        finally:
            tmp_frame.unlink(missing_ok=True)
        record["frame"] = FRAME_NAME
    except (NoDataError, InputDataError) as exc:
        record.update(status="dropped", reason=exc.reason, detail=str(exc))
        if isinstance(exc, InputDataError) and record["source_file"]:
            # name the archive file, not our temporary copy
            record["detail"] = f"{record['source_file']}: {exc.problem}"
        log.warning("%s %s %s: dropped (%s)", instrument, channel, requested, record["detail"])
    write_record(out_dir / RECORD_NAME, record)
    return record
