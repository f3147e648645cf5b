"""A fetched frame on disk: its request, its ``record.json`` and ``frame.fits``, and the period index.

One frame directory holds ``record.json`` (always, once fetched) and ``frame.fits`` (only when
the record says ``ok``). The record names the request it answers (source, instrument, channel,
requested time, tolerance, series), what the source delivered (``source_file``, ``obs_time``,
``reference_time``, ``export_id`` for JSOC) and the frame's ``size`` and ``sha256``, so that a
later run can tell a verified frame for the same request (kept, ``action: kept``) from one it must
fetch again. A frame is replaced only after its successor is verified: a failed or killed
re-fetch leaves the old frame and record as they were.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from farside_gan.core.errors import InputDataError, NoDataError
from farside_gan.core.fitsio import atomic_output, sha256_of
from farside_gan.core.header_checks import check_requested_time
from farside_gan.core.instruments import CHANNELS, SERIES_CADENCE_S, parse_time, reference_time

log = logging.getLogger(__name__)

RECORD_NAME = "record.json"
FRAME_NAME = "frame.fits"
PARTIAL_NAME = ".frame.fits.part"      # bytes of a download in progress (resumed by the next run)
INCOMING_NAME = ".frame.fits.incoming"  # a verified download waiting for its quality check
INDEX_NAME = "records.json"
TIME_DIR_FORMAT = "%Y%m%dT%H%M"         # <channel>/<time>/ under a period's directory


@dataclass(frozen=True)
class FrameRequest:
    """What a frame directory answers: the frame nearest ``time`` within ``tolerance``."""
    source: str
    instrument: str
    channel: int | str
    time: datetime
    tolerance: timedelta
    series: str

    def identity(self) -> dict:
        return {"source": self.source, "instrument": self.instrument, "channel": str(self.channel),
                "requested_time": self.time.isoformat(),
                "tolerance_s": self.tolerance.total_seconds(), "series": self.series}

    def new_record(self) -> dict:
        return {"status": "ok", "reason": "", "detail": "", **self.identity(), "obs_time": None,
                "reference_time": None, "source_file": None, "export_id": None, "frame": None,
                "size": None, "sha256": None, "action": "downloaded"}


def frame_dir(period_dir, channel, time: datetime) -> Path:
    """``<period_dir>/<channel>/<YYYYMMDDTHHMM>``: where one frame of a period goes."""
    return Path(period_dir) / str(channel) / time.strftime(TIME_DIR_FORMAT)


def write_record(path, record: dict) -> Path:
    with atomic_output(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return Path(path)


def read_record(out_dir) -> dict | None:
    try:
        return json.loads((Path(out_dir) / RECORD_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return None


def kept_record(out_dir, request: FrameRequest) -> dict | None:
    """The record of a verified frame in ``out_dir`` answering ``request``, marked
    ``action: kept``; None when the frame must be fetched (none, other request, dropped, or the
    file is not the one the record describes)."""
    record = read_record(out_dir)
    if not record or record.get("status") != "ok":
        return None
    if any(record.get(k) != v for k, v in request.identity().items()):
        return None
    frame = Path(out_dir) / FRAME_NAME
    if not record.get("sha256") or not frame.is_file() or frame.stat().st_size != record.get("size") \
            or sha256_of(frame) != record["sha256"]:
        return None
    return {**record, "action": "kept"}


def check_series(header, request: FrameRequest, path) -> None:
    """A frame whose header names another series than the request's is refused (never mixed)."""
    expected = SERIES_CADENCE_S.get(request.series)
    if expected is None:
        return
    cadence = header.get("CADENCE")
    if cadence in (None, ""):
        raise InputDataError(path, f"header has no CADENCE, so it cannot show it is {request.series}",
                             reason="missing_keyword")
    if abs(float(cadence) - expected) > 1e-6:
        raise InputDataError(path, f"CADENCE = {float(cadence):g} s: not a {request.series} frame "
                             f"({expected:g} s)", reason="wrong_series")


def finish_frame(request: FrameRequest, out_dir, incoming: Path, record: dict,
                 eclipse_periods=None) -> dict:
    """Quality-check a verified download and make it the frame of ``out_dir``; returns the record.

    ``record`` carries what the source said (``source_file``, ``obs_time``, ``export_id``). A
    data problem gives a 'dropped' record (and removes an older frame: the record and the
    directory always agree)."""
    from farside_gan.acquire.quality import check_file

    out_dir = Path(out_dir)
    try:
        try:
            data, header = check_file(incoming, request.instrument, request.channel, eclipse_periods)
            check_series(header, request, incoming)
            check_requested_time(header, request.time, request.tolerance, incoming)
        except InputDataError as exc:
            # name the archive file, not our temporary copy
            raise InputDataError(record.get("source_file") or incoming, exc.problem,
                                 reason=exc.reason) from exc
        obs = header.get("DATE-OBS") or header.get("DATE_OBS")
        record.update(status="ok", reason="", detail="", frame=FRAME_NAME,
                      obs_time=parse_time(obs).isoformat(),
                      reference_time=reference_time(header).isoformat(),
                      size=incoming.stat().st_size, sha256=sha256_of(incoming))
        os.replace(incoming, out_dir / FRAME_NAME)
        write_record(out_dir / RECORD_NAME, record)
        return record
    except InputDataError as exc:
        return record_drop(out_dir, record, exc)
    finally:
        incoming.unlink(missing_ok=True)


def record_drop(out_dir, record: dict, exc: InputDataError | NoDataError) -> dict:
    """Write a 'dropped' record (after removing any older frame: a killed job between the two
    leaves an old 'ok' record without its frame, which the next run fetches again)."""
    out_dir = Path(out_dir)
    record.update(status="dropped", reason=exc.reason, detail=str(exc), frame=None, size=None,
                  sha256=None)
    (out_dir / FRAME_NAME).unlink(missing_ok=True)
    write_record(out_dir / RECORD_NAME, record)
    log.warning("%s %s %s: dropped (%s)", record["instrument"], record["channel"],
                record["requested_time"], record["detail"])
    return record


def write_index(path, instrument: str, series: str, source: str, period_dir, records: list[dict]) -> Path:
    """The period's index: every frame's record with its directory relative to ``period_dir``."""
    period_dir = Path(period_dir)
    series_found = sorted({r["series"] for r in records})
    if series_found and series_found != [series]:
        raise ValueError(f"{period_dir}: records of series {series_found} in one {series} run")
    rows = []
    for r in records:
        d = frame_dir(period_dir, r["channel"], datetime.fromisoformat(r["requested_time"]))
        rows.append({"dir": d.relative_to(period_dir).as_posix(), **r})
    counts = {}
    for r in records:
        key = r["status"] if r["status"] == "ok" else f"dropped:{r['reason']}"
        counts[key] = counts.get(key, 0) + 1
    index = {"instrument": instrument, "series": series, "source": source,
             "channels": [str(c) for c in CHANNELS[instrument]], "counts": counts, "records": rows}
    with atomic_output(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(index, indent=2, default=str) + "\n")
    return Path(path)
