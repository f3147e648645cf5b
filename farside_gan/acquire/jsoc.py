"""JSOC through drms: ``aia.lev1_euv_12s`` and ``hmi.M_720s`` exported as FITS by URL.

A period's frames go out in **one export request per instrument and month**: the record set of
the wanted times and channels, e.g. ``aia.lev1_euv_12s[2011.01.01_00:00:00_UTC/31d@12h]
[304,193,171]{image}`` or ``hmi.M_720s[2011.01.01_00:00:00_UTC/31d@12h]{magnetogram}`` (times in
UTC, which JSOC maps onto each series' own slots: TAI for HMI). Before exporting, one keyword
query of the same record set (``T_REC, T_OBS, QUALITY``) shows which slots are missing or
flagged; for those a query of the tolerance window finds the nearest clean record, and the
export names such channels' records one by one (still in the same request). A request JSOC
finds too large (status 3) is split in two by time until it is accepted.

Exports are staged by JSOC and kept there for days, so their ids are kept too
(``.jsoc_exports.json`` in the period's directory): a rerun after a failure or a kill asks
JSOC for the staged export's status and downloads its remaining files, resuming partial ones,
instead of requesting the export again. Files are downloaded ``connections`` at a time, each
bounded by a deadline and verified (size, FITS CHECKSUM/DATASUM, readable FITS). HTTP 429/503
and JSOC's "too many pending requests" (status 7) are retried with backoff.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from farside_gan.acquire.records import (INCOMING_NAME, PARTIAL_NAME, FrameRequest, finish_frame,
                                         frame_dir, record_drop)
from farside_gan.acquire.transfer import (BACKOFF_S, DEADLINE_S, RETRIES, TIMEOUT_S, Candidate,
                                          DownloadError, TransientError, download, nearest,
                                          retry_after_s, transient_http, with_retries)
from farside_gan.core.errors import InputDataError, NoDataError
from farside_gan.core.fitsio import atomic_output
from farside_gan.core.instruments import CHANNELS, EUV, INSTRUMENTS, SERIES, check_channel, utc_time

log = logging.getLogger(__name__)

#: The instruments JSOC serves, and the segment of their records that holds the image.
SEGMENT = {key: i.jsoc_segment for key, i in INSTRUMENTS.items() if i.jsoc_segment}
JSOC_URL = "http://jsoc.stanford.edu/"
EXPORT_STATE = ".jsoc_exports.json"
CONNECTIONS = 2            # parallel file downloads per fetch job
POLL_S = 5.0               # seconds between export status checks
EXPORT_TIMEOUT_S = 4 * 3600.0
BUSY_WAIT_S = 60.0         # wait after JSOC's "too many pending requests"
STATUS_TOO_LARGE = 3
STATUS_TOO_MANY = 7
KEYS = "T_REC,T_OBS,QUALITY"
FLAGGED_UNKNOWN = 1 << 31  # JSOC's "missing" bit: a QUALITY that could not be read counts as flagged


def jsoc_time(t: datetime) -> str:
    return f"{t:%Y.%m.%d_%H:%M:%S}_UTC"


def duration_text(seconds: float) -> str:
    """Largest exact unit: 2678400 -> '31d', 43200 -> '12h', 90 -> '90s'."""
    seconds = int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def time_selector(times: list[datetime]) -> str:
    """A T_REC selector for these times: ``t0/span@step`` when they are evenly spaced."""
    times = sorted(set(times))
    if len(times) == 1:
        return jsoc_time(times[0])
    steps = {(b - a).total_seconds() for a, b in zip(times, times[1:])}
    if len(steps) == 1:
        step = steps.pop()
        if step == int(step):
            return f"{jsoc_time(times[0])}/{duration_text(step * len(times))}@{duration_text(step)}"
    return ",".join(jsoc_time(t) for t in times)


def _wavelength_keyed(instrument: str) -> bool:
    """An EUV series' records have the wavelength as their second prime key (WAVELNTH); a
    magnetogram series has one channel (its second prime key is the camera)."""
    return INSTRUMENTS[instrument].role == EUV


def _channel_part(instrument: str, channels) -> str:
    return f"[{','.join(str(c) for c in channels)}]" if _wavelength_keyed(instrument) else ""


def grid_record_set(instrument: str, times, channels, segment: bool = True) -> str:
    """``series[times][channels]{segment}`` for every wanted time and channel."""
    ds = f"{SERIES[instrument]}[{time_selector(times)}]{_channel_part(instrument, channels)}"
    return ds + (f"{{{SEGMENT[instrument]}}}" if segment else "")


def record_key(instrument: str, t_rec: str, channel) -> tuple:
    """A record's identity across queries and exports (T_REC to the second, in UTC)."""

    t = utc_time(str(t_rec).strip())
    return instrument, str(channel), t.replace(microsecond=0) + timedelta(seconds=round(t.microsecond / 1e6))


def parse_export_record(instrument: str, record: str) -> tuple | None:
    """The :func:`record_key` of an export's record string, e.g.
    ``hmi.M_720s[2011.01.01_00:00:00_TAI][2]{magnetogram}`` (None if not of this instrument)."""
    m = re.match(r"^\s*([\w.]+)((?:\[[^\]]*\])+)", str(record))
    if not m or m.group(1).lower() != SERIES[instrument].lower():
        return None
    keys = re.findall(r"\[([^\]]*)\]", m.group(2))
    wavelength = _wavelength_keyed(instrument) and len(keys) > 1
    channel = keys[1] if wavelength else CHANNELS[instrument][0]
    try:
        return record_key(instrument, keys[0], channel)
    except ValueError:
        return None


def _quality(value) -> int:
    """QUALITY as JSOC prints it ('0x00000400' or '1024'); unreadable counts as flagged. (Parsed
    here: drms 0.9 under pandas 3 turns hexadecimal QUALITY strings into NaN.)"""
    text = str(value).strip()
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(float(text))
    except (TypeError, ValueError, OverflowError):
        return FLAGGED_UNKNOWN


def download_export_file(request, what: str, dest: Path, partial: Path, **options) -> dict:
    """Download the one file a staged single-record export delivered (``options``:
    ``transfer.download``'s); the record's provenance for its ``record.json``."""
    urls = request.urls
    if len(urls) == 0:
        raise DownloadError(f"{what} delivered no file")
    row = urls.iloc[0]
    download(row["url"], dest, partial, name=f"{row['record']} ({row['url']})",
             identity=str(row["record"]), **options)
    return {"source_file": str(row["record"]), "export_id": request.id}


class ExportState:
    """The export ids of a period (``.jsoc_exports.json``), written as soon as JSOC gives one."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.exports = json.loads(self.path.read_text()).get("exports", [])
        except (FileNotFoundError, ValueError):
            self.exports = []

    def add(self, export_id: str, spec: str) -> None:
        self.exports.append({"id": export_id, "spec": spec,
                             "requested": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        self._save()

    def clear(self) -> None:
        """Every frame is in: nothing left to resume."""
        self.exports = []
        self.path.unlink(missing_ok=True)

    def remove(self, export_id: str) -> None:
        self.exports = [e for e in self.exports if e["id"] != export_id]
        self._save()

    def _save(self) -> None:
        with atomic_output(self.path, suffix=".json") as tmp:
            tmp.write_text(json.dumps({"exports": self.exports}, indent=2) + "\n")


class JsocSource:
    """JSOC through drms; ``server_url`` points drms at another DRMS server (a mirror, a test)."""

    SERIES = {i: SERIES[i] for i in SEGMENT}

    def __init__(self, email: str | None, retries: int = RETRIES, backoff: float = BACKOFF_S,
                 deadline_s: float | None = DEADLINE_S, connections: int = CONNECTIONS,
                 server_url: str | None = None, poll_s: float = POLL_S,
                 export_timeout_s: float = EXPORT_TIMEOUT_S, busy_wait_s: float = BUSY_WAIT_S,
                 timeout: float = TIMEOUT_S):
        if not email:
            raise DownloadError("jsoc: a JSOC-registered export email is required (--jsoc-email; "
                                "register at http://jsoc.stanford.edu/ajax/register_email.html)")
        self.email, self.retries, self.backoff = email, retries, backoff
        self.deadline_s, self.connections, self.timeout = deadline_s, max(1, int(connections)), timeout
        self.server_url, self.poll_s = server_url, poll_s
        self.export_timeout_s, self.busy_wait_s = export_timeout_s, busy_wait_s
        self._drms_client = None

    def __str__(self):
        return "jsoc"

    def series(self, instrument: str) -> str:
        if instrument not in self.SERIES:
            raise DownloadError(f"jsoc serves {sorted(self.SERIES)}, not {instrument}; use fido for EUVI")
        return self.SERIES[instrument]

    # -- drms calls, with retries and clear errors
    def _call(self, action, what: str):
        import drms

        def attempt():
            try:
                return action()
            except urllib.error.HTTPError as exc:
                if transient_http(exc):
                    raise TransientError(f"HTTP {exc.code} {exc.reason}",
                                         retry_after_s(exc.headers.get("Retry-After"))) from exc
                raise DownloadError(f"jsoc {what}: HTTP {exc.code} {exc.reason}") from exc
            except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as exc:
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            except drms.DrmsError as exc:
                raise DownloadError(f"jsoc {what}: {exc}") from exc

        return with_retries(attempt, f"jsoc {what}", self.retries, self.backoff)

    def _client(self):
        if self._drms_client is None:
            import drms

            server = "jsoc"
            if self.server_url:
                base = self.server_url.rstrip("/") + "/"
                server = drms.ServerConfig(
                    name=f"DRMS at {base}", cgi_baseurl=base + "cgi-bin/ajax/",
                    cgi_show_series="show_series", cgi_jsoc_info="jsoc_info",
                    cgi_jsoc_fetch="jsoc_fetch", cgi_check_address="checkAddress.sh",
                    http_download_baseurl=base)

            def connect():
                try:
                    return drms.Client(server=server, email=self.email)
                except ValueError as exc:  # drms: "Email address is invalid or not registered"
                    raise DownloadError(f"jsoc: {self.email!r} is not a JSOC-registered export "
                                        "address (http://jsoc.stanford.edu/ajax/register_email.html)") from exc

            self._drms_client = self._call(connect, "check of the export address")
        return self._drms_client

    def query(self, ds: str, instrument: str, channel=None) -> list[Candidate]:
        """Records of a record set, as candidates (time = T_OBS in UTC, location = T_REC)."""

        keys = KEYS + (",WAVELNTH" if _wavelength_keyed(instrument) else "")
        table = self._call(lambda: self._client().query(ds, key=keys, convert_numeric=False),
                           f"query {ds}")
        out = []
        for _, rec in table.iterrows():
            t_obs = str(rec["T_OBS"])
            if "MISSING" in t_obs.upper() or not t_obs.strip():
                continue
            ch = channel if channel is not None else (
                int(rec["WAVELNTH"]) if _wavelength_keyed(instrument) else CHANNELS[instrument][0])
            try:
                out.append(Candidate(instrument, ch, utc_time(t_obs), str(rec["T_REC"]),
                                     quality=_quality(rec.get("QUALITY"))))
            except ValueError:
                log.warning("jsoc %s: skipping record with unreadable T_OBS %r", ds, t_obs)
        return out

    # -- one frame
    @classmethod
    def record_set(cls, instrument: str, channel, start: datetime, end: datetime) -> str:
        """drms record-set string for the time window, e.g. aia.lev1_euv_12s[t0-t1][171]."""
        if instrument not in cls.SERIES:
            raise ValueError(f"JSOC serves {sorted(cls.SERIES)}, not {instrument!r}")
        window = f"[{jsoc_time(start)}-{jsoc_time(end)}]"
        channels = [int(channel)] if _wavelength_keyed(instrument) else []
        return f"{cls.SERIES[instrument]}{window}{_channel_part(instrument, channels)}"

    @classmethod
    def export_spec(cls, instrument: str, channel, t_rec: str) -> str:
        chan = f"[{int(channel)}]" if _wavelength_keyed(instrument) else ""
        return f"{cls.SERIES[instrument]}[{t_rec}]{chan}{{{SEGMENT[instrument]}}}"

    def search(self, instrument, channel, time, tolerance) -> Candidate:
        channel = check_channel(instrument, channel)
        self.series(instrument)
        ds = self.record_set(instrument, channel, time - tolerance, time + tolerance)
        return nearest(self.query(ds, instrument, channel), time, tolerance, f"jsoc {ds}")

    def fetch(self, candidate: Candidate, dest: Path, partial: Path) -> dict:
        spec = self.export_spec(candidate.instrument, candidate.channel, candidate.location)
        [request] = self._export([spec], state=None)
        return download_export_file(request, f"jsoc export {request.id} of {spec}", dest, partial,
                                    timeout=self.timeout, deadline_s=self.deadline_s,
                                    retries=self.retries, backoff=self.backoff)

    # -- exports
    def _request_export(self, spec: str):
        """An ExportRequest, or None when JSOC finds it too large (status 3)."""
        def attempt():
            request = self._client().export(spec, method="url", protocol="fits")
            status = int(request.status)
            error = getattr(request, "_d", {}).get("error") or ""
            if status == STATUS_TOO_MANY:
                raise TransientError(f"JSOC is busy: {error or 'too many pending export requests'}",
                                     retry_after=self.busy_wait_s)
            if status == STATUS_TOO_LARGE:
                return None
            if status not in (0, 1, 2, 6):
                raise DownloadError(f"jsoc export {spec}: status {status} {error}".rstrip())
            return request

        return self._call(attempt, f"export {spec}")

    def _wait(self, request, spec: str):
        finished = self._call(lambda: request.wait(timeout=self.export_timeout_s, sleep=self.poll_s),
                              f"export {request.id} ({spec})")
        if not finished:
            raise DownloadError(f"jsoc export {request.id} ({spec}) still staging after "
                                f"{self.export_timeout_s:g} s; a rerun resumes it")
        return request

    def _export(self, specs: list[str], state: ExportState | None, split=None) -> list:
        """Request and wait for the exports of ``specs``; a too-large one is replaced by the specs
        ``split(spec)`` returns (None: not splittable, an error)."""
        done = []
        queue = list(specs)
        while queue:
            spec = queue.pop(0)
            request = self._request_export(spec)
            if request is None:
                parts = split(spec) if split else None
                if not parts:
                    raise DownloadError(f"jsoc export {spec}: too large for JSOC (status 3) and "
                                        "cannot be split further")
                log.info("jsoc: %s is too large for one export; splitting it in %d", spec, len(parts))
                queue[:0] = parts
                continue
            log.info("jsoc: export %s requested for %s", request.id, spec)
            if state is not None and request.id:
                state.add(request.id, spec)
            done.append(self._wait(request, spec))
        return done

    def _staged(self, state: ExportState) -> list:
        """Exports staged for this period by an earlier run that JSOC still holds."""
        import drms

        out = []
        for entry in list(state.exports):
            try:
                request = self._call(lambda: self._client().export_from_id(entry["id"]),
                                     f"status of export {entry['id']}")
                out.append(self._wait(request, entry["spec"]))
                log.info("jsoc: resuming export %s (%s)", entry["id"], entry["spec"])
            except (DownloadError, drms.DrmsError) as exc:
                log.warning("jsoc: export %s can no longer be used (%s); forgetting it", entry["id"], exc)
                state.remove(entry["id"])
        return out

    # -- a whole period
    def _choose(self, instrument: str, requests: list[FrameRequest]) -> dict:
        """request -> (Candidate, from_grid) or NoDataError, from one query of the month's grid
        (plus a window query for each slot that is missing or flagged)."""
        times = sorted({r.time for r in requests})
        channels = [c for c in CHANNELS[instrument] if any(str(r.channel) == str(c) for r in requests)]
        rows = self.query(grid_record_set(instrument, times, channels, segment=False), instrument)
        chosen = {}
        for r in requests:
            grid = [c for c in rows if str(c.channel) == str(r.channel)]
            try:
                candidate, from_grid = nearest(grid, r.time, r.tolerance, "grid"), True
            except NoDataError:
                candidate, from_grid = None, False
            if candidate is None or candidate.quality:
                try:
                    candidate, from_grid = self.search(instrument, r.channel, r.time, r.tolerance), False
                except NoDataError as exc:
                    chosen[r] = exc
                    continue
            chosen[r] = (candidate, from_grid)
        return chosen

    def export_specs(self, instrument: str, chosen: dict) -> str:
        """One record set (comma-separated parts) for the chosen records: channels whose records
        are all the grid's share ``[t0/span@step][c1,c2,...]``; others list their T_RECs."""
        by_channel = {}
        for r, (candidate, from_grid) in chosen.items():
            by_channel.setdefault(str(r.channel), []).append((r, candidate, from_grid))
        grid_groups, parts = {}, []
        for channel in [str(c) for c in CHANNELS[instrument] if str(c) in by_channel]:
            items = by_channel[channel]
            if all(g for _, _, g in items):
                grid_groups.setdefault(tuple(sorted(r.time for r, _, _ in items)), []).append(channel)
            else:
                trecs = ",".join(c.location for _, c, _ in sorted(items, key=lambda i: i[1].time))
                parts.append(f"{SERIES[instrument]}[{trecs}]{_channel_part(instrument, [channel])}"
                             f"{{{SEGMENT[instrument]}}}")
        grid_parts = [grid_record_set(instrument, list(times), chans) for times, chans in grid_groups.items()]
        return ",".join(grid_parts + parts)

    def fetch_batch(self, requests: list[FrameRequest], period_dir, eclipse_periods=None):
        """Fetch every request (one instrument) with one export per month; returns
        ``(records by request, failure messages)``."""
        period_dir = Path(period_dir)
        instrument = requests[0].instrument
        self.series(instrument)
        state = ExportState(period_dir / EXPORT_STATE)
        records, failures = {}, []
        months = {}
        for r in requests:
            months.setdefault((r.time.year, r.time.month), []).append(r)
        staged = self._staged(state) if state.exports else []
        for month in sorted(months):
            chosen = {}
            for r, outcome in self._choose(instrument, months[month]).items():
                if isinstance(outcome, NoDataError):
                    records[r] = record_drop(frame_dir(period_dir, r.channel, r.time), r.new_record(), outcome)
                else:
                    chosen[r] = outcome
            files = self._match(instrument, chosen, staged)
            missing = {r: v for r, v in chosen.items() if r not in files}
            if missing:
                split = self._splitter(instrument, missing)
                new = self._export([self.export_specs(instrument, missing)], state, split)
                staged += new
                files.update(self._match(instrument, missing, new))
            for r in chosen:
                if r not in files:
                    failures.append(f"{r.instrument} {r.channel} {r.time:%Y-%m-%dT%H:%M}: "
                                    f"the export delivered no file for {chosen[r][0].location}")
            records.update(self._download_all(files, chosen, period_dir, eclipse_periods, failures))
        if not failures:
            state.clear()
        return records, failures

    def _splitter(self, instrument: str, chosen: dict):
        specs = {}

        def halves(items: dict) -> list[str]:
            times = sorted({r.time for r in items})
            if len(times) < 2:
                return []
            cut = times[len(times) // 2]
            out = []
            for part in ({r: v for r, v in items.items() if r.time < cut},
                         {r: v for r, v in items.items() if r.time >= cut}):
                spec = self.export_specs(instrument, part)
                specs[spec] = part
                out.append(spec)
            return out

        specs[self.export_specs(instrument, chosen)] = chosen
        return lambda spec: halves(specs.get(spec, {}))

    def _match(self, instrument: str, chosen: dict, exports: list) -> dict:
        """request -> (url, export record, export id) for the chosen records these exports hold."""
        wanted = {record_key(instrument, c.location, r.channel): r for r, (c, _) in chosen.items()}
        files = {}
        for request in exports:
            for _, row in request.urls.iterrows():
                key = parse_export_record(instrument, row["record"])
                if key in wanted and wanted[key] not in files:
                    files[wanted[key]] = (row["url"], str(row["record"]), request.id)
        return files

    def _download_all(self, files: dict, chosen: dict, period_dir: Path, eclipse_periods, failures):
        def one(r):
            url, export_record, export_id = files[r]
            out_dir = frame_dir(period_dir, r.channel, r.time)
            out_dir.mkdir(parents=True, exist_ok=True)
            record = r.new_record()
            record.update(source_file=export_record, export_id=export_id,
                          obs_time=chosen[r][0].time.isoformat())
            incoming = out_dir / INCOMING_NAME
            try:
                download(url, incoming, out_dir / PARTIAL_NAME, name=f"{export_record} ({url})",
                         identity=export_record, timeout=self.timeout, deadline_s=self.deadline_s,
                         retries=self.retries, backoff=self.backoff, progress=False)
            except InputDataError as exc:
                return record_drop(out_dir, record, exc)
            return finish_frame(r, out_dir, incoming, record, eclipse_periods)

        records = {}
        with ThreadPoolExecutor(max_workers=self.connections) as pool:
            futures = {r: pool.submit(one, r) for r in files}
            for r, future in futures.items():
                try:
                    records[r] = future.result()
                except DownloadError as exc:
                    failures.append(str(exc))
        return records
