"""Find and fetch the observations nearest wanted times, from a configurable source.

Sources (``open_source(spec)``):

* a local archive directory and an HTTP archive ``http://host:port/`` laid out like the real
  ones, with a checksummed ``catalog.csv`` (:mod:`farside_gan.acquire.archives`);
* ``jsoc``: JSOC through drms (``aia.lev1_euv_12s``, ``hmi.M_720s``), one export per instrument
  and month for a period (:mod:`farside_gan.acquire.jsoc`);
* ``fido``: sunpy's Fido, AIA/HMI by JSOC series, EUVI from the VSO (:mod:`farside_gan.acquire.fido`).

:func:`fetch_observation` fetches one frame into a directory, :func:`fetch_period` every
channel and time of a period for one instrument (the workflow's fetch job) and writes the
period's index. Either keeps a frame already fetched and verified for the same request
(``action: kept``) and replaces a frame only once its successor is verified
(:mod:`farside_gan.acquire.records`). Downloads are bounded, resumable and verified
(:mod:`farside_gan.acquire.transfer`). Data problems (no data, bad file, failed quality check) are
'dropped' records with a reason; an unreachable or failing source raises :class:`DownloadError`
and leaves what was already fetched in place.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from farside_gan.acquire.archives import HttpArchive, LocalArchive
from farside_gan.acquire.fido import FidoSource
from farside_gan.acquire.jsoc import CONNECTIONS, JsocSource
from farside_gan.acquire.records import (FRAME_NAME, INCOMING_NAME, PARTIAL_NAME, RECORD_NAME,
                                         FrameRequest, finish_frame, frame_dir, kept_record,
                                         record_drop, write_index, write_record)
from farside_gan.acquire.transfer import (BACKOFF_S, DEADLINE_S, RETRIES, Candidate, DownloadError,
                                          TransientError, nearest, with_retries)
from farside_gan.core.errors import InputDataError, NoDataError
from farside_gan.core.instruments import CHANNELS, check_channel, parse_time
from farside_gan.core.times import parse_duration, times_at_cadence

__all__ = ["BACKOFF_S", "Candidate", "DEADLINE_S", "DownloadError", "FRAME_NAME", "FidoSource",
           "HttpArchive", "JsocSource", "LocalArchive", "RECORD_NAME", "RETRIES", "TransientError",
           "fetch_observation", "fetch_period", "nearest", "open_source",
           "times_at_cadence", "with_retries", "write_record"]

log = logging.getLogger(__name__)


def open_source(spec: str, jsoc_email: str | None = None, retries: int = RETRIES,
                backoff: float = BACKOFF_S, deadline_s: float | None = DEADLINE_S,
                connections: int = CONNECTIONS, jsoc_url: str | None = None, **options):
    """A source from its spec: archive directory, http(s) URL, 'fido' or 'jsoc'. ``options``
    go to the JSOC/Fido sources (``poll_s``, ``export_timeout_s``, ``busy_wait_s``)."""
    if spec == "fido":
        return FidoSource(jsoc_email, retries, backoff, deadline_s, connections,
                          **{k: v for k, v in options.items() if k in ("poll_s", "export_timeout_s")})
    if spec == "jsoc":
        return JsocSource(jsoc_email, retries, backoff, deadline_s, connections,
                          server_url=jsoc_url, **options)
    if spec.startswith(("http://", "https://")):
        return HttpArchive(spec, retries=retries, backoff=backoff, deadline_s=deadline_s)
    if Path(spec).is_dir():
        return LocalArchive(spec, retries=retries, backoff=backoff, deadline_s=deadline_s)
    raise DownloadError(f"source {spec!r} is neither an archive directory, an http URL, 'fido' nor 'jsoc'")


def _request(src, instrument: str, channel, time, tolerance) -> FrameRequest:

    return FrameRequest(str(src), instrument, check_channel(instrument, channel), parse_time(time),
                        parse_duration(tolerance), src.series(instrument))


def _fetch_one(src, request: FrameRequest, out_dir: Path, eclipse_periods) -> dict:
    """Search, download (resuming a partial file) and check one frame into ``out_dir``."""
    record = request.new_record()
    try:
        candidate = src.search(request.instrument, request.channel, request.time, request.tolerance)
        record["obs_time"] = candidate.time.isoformat()
        if isinstance(candidate.location, str):
            record["source_file"] = candidate.location
        incoming = out_dir / INCOMING_NAME
        record.update(src.fetch(candidate, incoming, out_dir / PARTIAL_NAME))
        return finish_frame(request, out_dir, incoming, record, eclipse_periods)
    except (NoDataError, InputDataError) as exc:
        return record_drop(out_dir, record, exc)


def fetch_observation(source, instrument: str, channel, time, tolerance, out_dir,
                      jsoc_email: str | None = None, eclipse_periods=None,
                      retries: int = RETRIES, backoff: float = BACKOFF_S,
                      deadline_s: float | None = DEADLINE_S, refetch: bool = False,
                      **source_options) -> dict:
    """Fetch and quality-check the frame nearest ``time`` into ``out_dir``; returns its record.

    ``out_dir/record.json`` is written for every outcome except a failing source
    (:class:`DownloadError`, which leaves ``out_dir`` as it was); ``out_dir/frame.fits`` (the
    raw file, unmodified) exists only when the record's status is 'ok'. A verified frame
    already there for the same request is kept (``action: kept``) unless ``refetch``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    src = source if not isinstance(source, str) else open_source(
        source, jsoc_email, retries, backoff, deadline_s, **source_options)
    request = _request(src, instrument, channel, time, tolerance)
    kept = None if refetch else kept_record(out_dir, request)
    if kept:
        log.info("%s %s %s: kept (verified frame of the same request)", instrument, channel, time)
        return kept
    return _fetch_one(src, request, out_dir, eclipse_periods)


def fetch_period(source, instrument: str, times, out_dir, tolerance="1h", jsoc_email: str | None = None,
                 eclipse_periods=None, retries: int = RETRIES, backoff: float = BACKOFF_S,
                 deadline_s: float | None = DEADLINE_S, connections: int = CONNECTIONS,
                 refetch: bool = False, index=None, **source_options) -> list[dict]:
    """Fetch every channel of ``instrument`` at each of ``times`` into
    ``out_dir/<channel>/<YYYYMMDDTHHMM>/`` (record.json, frame.fits when ok); returns the
    records in (time, channel) order and, with ``index``, writes them there atomically.

    JSOC fetches the period with one export per month (split when too large); the other
    sources fetch frame by frame (an HTTP archive ``connections`` at a time). Frames
    already fetched and verified for the same request are kept. If any frame fails for a
    reason other than its data, the others are still fetched, no index is written and
    :class:`DownloadError` names the failures; a rerun keeps what arrived and resumes the rest.
    """
    out_dir = Path(out_dir)
    src = source if not isinstance(source, str) else open_source(
        source, jsoc_email, retries, backoff, deadline_s, connections, **source_options)

    requests = [_request(src, instrument, channel, t, tolerance)
                for t in sorted({parse_time(t) for t in times}) for channel in CHANNELS[instrument]]
    records, todo = {}, []
    for r in requests:
        d = frame_dir(out_dir, r.channel, r.time)
        d.mkdir(parents=True, exist_ok=True)
        kept = None if refetch else kept_record(d, r)
        if kept:
            records[r] = kept
        else:
            todo.append(r)
    log.info("%s: %d frames kept, %d to fetch from %s", out_dir, len(records), len(todo), src)
    failures = []
    if todo and hasattr(src, "fetch_batch"):
        fetched, failures = src.fetch_batch(todo, out_dir, eclipse_periods)
        records.update(fetched)
    elif todo:
        if hasattr(src, "catalog"):
            src.catalog()  # read once, before the threads share it
        # parallel for an HTTP archive; a local copy gains nothing, and Fido's clients (VSO over
        # zeep) are not known to be thread-safe: its parfive downloads use the connections
        workers = max(1, int(connections)) if isinstance(src, HttpArchive) else 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {r: pool.submit(_fetch_one, src, r, frame_dir(out_dir, r.channel, r.time),
                                      eclipse_periods) for r in todo}
            for r, future in futures.items():
                try:
                    records[r] = future.result()
                except DownloadError as exc:
                    failures.append(str(exc))
    if failures:
        shown = "; ".join(failures[:3]) + (f"; and {len(failures) - 3} more" if len(failures) > 3 else "")
        raise DownloadError(f"{out_dir}: {len(failures)} of {len(requests)} frames not fetched "
                            f"({shown}); what arrived is kept and a rerun resumes the rest")
    ordered = [records[r] for r in requests]
    if index is not None:
        write_index(index, instrument, src.series(instrument), str(src), out_dir, ordered)
    return ordered
