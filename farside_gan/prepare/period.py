"""One instrument's fetched frames of one period, prepared in one process.

For every time of the period: calibrate -> align -> normalize each channel (the library's
stage functions, in memory), then stack the EUV channels into one sample. One job per
instrument and period (the fetch batch) instead of one per frame and stage keeps the workflow's
DAG small (the 2011-2017 run is ~300 preparation jobs, not ~100,000) and pays the imports once.

Input: the fetch index of the period (``records.json``, written by ``fetch-period``: one record
per channel and time, each with its frame's directory relative to the index). Output directory::

    records.json                     one entry per time: ok or dropped (stage, reason, detail)
    aligned/<channel>/<time>.fits    co-aligned frame in physical units (DN/s or Gauss)
    stacks/<time>.fits               EUV: the normalized channels, (3, N, N) in [-1, 1]
    targets/<time>.fits              HMI: the normalized magnetogram, (N, N) in [-1, 1]

A frame that cannot be used (its fetch dropped it, or a stage raises an error naming the file)
drops its time with the stage and reason; the other times go on. ``<time>`` is the grid time the
workflow asked for (``layout.TIME_KEY_FORMAT``).
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from farside_gan.core.documents import check_document, read_json
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import atomic_output, read_fits, write_fits
from farside_gan.core.instruments import (CHANNELS, EUV_INSTRUMENTS, INSTRUMENTS, TRAINING_INPUT,
                                          TRAINING_TARGET, obs_time, parse_time, parse_time_key,
                                          reference_time, time_key)
from farside_gan.prepare.calibrate import CalibrationError

log = logging.getLogger(__name__)

INDEX_NAME = "records.json"
#: What preparation reads of each record of a fetch index.
FETCH_RECORD_KEYS = ("instrument", "channel", "requested_time", "status", "dir")
#: ... and of each entry of a preparation index.
PREPARED_KEYS = ("time", "status")
STAGE_ERRORS = (InputDataError, CalibrationError)


@dataclass(frozen=True)
class PrepareSettings:
    """The co-aligned frame and the normalization (config sections ``image:``, ``normalize:``)."""
    size: int
    rsun_px: float
    mask_radius: float
    fill: float
    euv_median: float
    euv_clip: tuple[float, float]
    hmi_clip: float


def read_fetch_index(path: str | os.PathLike) -> list[dict]:
    """The frame records of a period's fetch index (``download.fetch_period``), each with
    ``frame_path``: its frame's absolute path when the frame is usable, else None."""
    path = Path(path)
    records = check_document(read_json(path, "a fetch index", ("records",))["records"], path,
                             "a fetch index's list of records", kind=list)
    for rec in records:
        check_document(rec, path, "a fetch record", FETCH_RECORD_KEYS)
        usable = rec["status"] == "ok" and rec.get("frame")
        rec["frame_path"] = str(path.parent / rec["dir"] / rec["frame"]) if usable else None
    return records


def frames_by_time(instrument: str, records: list[dict]) -> dict[str, dict[str, dict]]:
    """{time key: {channel: record}} for one instrument, every channel of CHANNELS present."""
    out: dict[str, dict[str, dict]] = {}
    for rec in records:
        if rec["instrument"] != instrument:
            continue
        key = time_key(parse_time(rec["requested_time"]))
        out.setdefault(key, {})[str(rec["channel"])] = rec
    return out


# ---------------------------------------------------------------------- one time

_TABLES = None  # AIA calibration tables, loaded once per process


def _load_tables(calibration_dir):
    global _TABLES
    if calibration_dir is not None and _TABLES is None:
        from farside_gan.prepare.calibrate import load_calibration_tables
        _TABLES = load_calibration_tables(calibration_dir)
    return _TABLES


def prepare_time(instrument: str, key: str, frames: dict[str, dict], settings: PrepareSettings,
                 out_dir: str | os.PathLike, calibration_dir=None) -> dict:
    """Prepare every channel of one time; returns its entry for ``records.json``."""
    from farside_gan.prepare.align import align_frame
    from farside_gan.prepare.calibrate import calibrate_frame
    from farside_gan.prepare.stack import stack_frames
    from farside_gan.prepare.normalize import normalize_frame

    out_dir = Path(out_dir)
    entry = {"time": key, "status": "ok", "stage": "", "reason": "", "detail": "",
             "obs_time": None, "aligned": {}}
    channels = [str(c) for c in CHANNELS[instrument]]
    missing = [c for c in channels if c not in frames]
    if missing:
        return {**entry, "status": "dropped", "stage": "fetch", "reason": "no_data",
                "detail": f"no fetch record for channel(s) {', '.join(missing)}"}
    for channel in channels:
        rec = frames[channel]
        if rec["status"] != "ok":
            return {**entry, "status": "dropped", "stage": "fetch", "reason": rec.get("reason") or
                    "dropped", "detail": f"{instrument} {channel}: {rec.get('detail', '')}".strip()}
    normalized, paths = [], []
    stage = "calibrate"
    try:
        tables = _load_tables(calibration_dir) if INSTRUMENTS[instrument].calibration_tables \
            else None
        for channel in channels:
            path = frames[channel]["frame_path"]
            stage = "calibrate"
            data, header = read_fits(path)
            data, header = calibrate_frame(data, header, path=path, tables=tables)
            stage = "align"
            data, header = align_frame(data, header, settings.size, settings.rsun_px,
                                       settings.mask_radius, settings.fill, path=path)
            aligned = Path("aligned") / channel / f"{key}.fits"
            write_fits(out_dir / aligned, data, header)
            entry["aligned"][channel] = str(aligned)
            stage = "normalize"
            normalized.append(normalize_frame(data, header, settings.euv_median,
                                              tuple(settings.euv_clip), settings.hmi_clip,
                                              path=path))
            paths.append(path)
        if instrument in EUV_INSTRUMENTS:
            stage = "stack"
            cube, header = stack_frames(normalized, paths)
            entry["stack"] = str(Path("stacks") / f"{key}.fits")
            write_fits(out_dir / entry["stack"], cube, header)
        else:
            (data, header), = normalized
            entry["target"] = str(Path("targets") / f"{key}.fits")
            write_fits(out_dir / entry["target"], data, header)
    except STAGE_ERRORS as exc:
        # the time is dropped; what this time already wrote would look usable: remove it
        for rel in list(entry["aligned"].values()) + [entry.get("stack"), entry.get("target")]:
            if rel:
                (out_dir / rel).unlink(missing_ok=True)
        log.warning("%s %s dropped at %s: %s", instrument, key, stage, exc)
        return {"time": key, "status": "dropped", "stage": stage,
                "reason": getattr(exc, "reason", None) or "calibration_failed",
                "detail": str(exc), "obs_time": None, "aligned": {}}
    entry["obs_time"] = obs_time(header).isoformat()
    entry["reference_time"] = reference_time(header).isoformat()
    return entry


def _prepare_time_job(args):
    return prepare_time(*args)


# ---------------------------------------------------------------------- one period

def prepare_period(instrument: str, fetch_index: str | os.PathLike, out_dir: str | os.PathLike,
                   settings: PrepareSettings, calibration_dir=None, workers: int = 1,
                   times: list[str] | None = None, progress: bool = True) -> Path:
    """Prepare every time of a fetch index (or only ``times``); writes ``out_dir/records.json``.

    With ``times``, only those times are redone and the others' entries are kept from an
    existing ``records.json`` (to redo one frame without its whole period).
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if INSTRUMENTS[instrument].calibration_tables and calibration_dir is None:
        raise CalibrationError(f"{fetch_index}: {INSTRUMENTS[instrument].label} frames need the "
                               "calibration tables (--calibration-dir)")
    by_time = frames_by_time(instrument, read_fetch_index(fetch_index))
    kept: dict[str, dict] = {}
    if times is not None:
        unknown = sorted(set(times) - set(by_time))
        if unknown:
            raise InputDataError(fetch_index, f"has no {instrument} records for {unknown}",
                                 reason="no_data")
        index = out_dir / INDEX_NAME
        if index.exists():
            earlier = read_json(index, "a preparation index", ("times",))["times"]
            kept = {e["time"]: e for e in earlier if e["time"] not in times}
        by_time = {k: v for k, v in by_time.items() if k in times}
    jobs = [(instrument, key, frames, settings, out_dir, calibration_dir)
            for key, frames in sorted(by_time.items())]
    # disable=None: a bar on a terminal only; a job's log gets the summary line below instead
    bar = tqdm(total=len(jobs), desc=f"prepare {instrument}", unit="time",
               disable=None if progress else True, mininterval=5)
    entries = []
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            for entry in pool.map(_prepare_time_job, jobs):
                entries.append(entry)
                bar.update()
    else:
        for job in jobs:
            entries.append(prepare_time(*job))
            bar.update()
    bar.close()
    entries = sorted([*kept.values(), *entries], key=lambda e: e["time"])
    document = {"instrument": instrument, "settings": asdict(settings), "times": entries}
    with atomic_output(out_dir / INDEX_NAME, suffix=".json") as tmp:
        tmp.write_text(json.dumps(document, indent=1) + "\n")
    ok = sum(e["status"] == "ok" for e in entries)
    log.info("%s: %d of %d times prepared, %d dropped", out_dir, ok, len(entries), len(entries) - ok)
    return out_dir / INDEX_NAME


def read_prepared_index(prepared_dir: str | os.PathLike) -> dict:
    """A prepared directory's ``records.json``: its ``times`` (one entry per time), with file
    paths made absolute, and ``instrument``."""
    prepared_dir = Path(prepared_dir)
    path = prepared_dir / INDEX_NAME
    document = read_json(path, "a preparation index", ("times",))
    check_document(document["times"], path, "a preparation index's list of times", kind=list)
    for e in document["times"]:
        check_document(e, path, "a preparation index's entry", PREPARED_KEYS)
        for key in ("stack", "target"):
            if e.get(key):
                e[key] = str(prepared_dir / e[key])
        e["aligned"] = {c: str(prepared_dir / p) for c, p in (e.get("aligned") or {}).items()}
    return document


def read_prepared(prepared_dir: str | os.PathLike) -> list[dict]:
    """The entries of a prepared directory's ``records.json``, with file paths made absolute."""
    return read_prepared_index(prepared_dir)["times"]


def prepared_inputs(prepared_dirs) -> tuple[list[str], list[str], list[dict]]:
    """(AIA stacks, HMI targets, records) of prepared period directories (``prepare``).

    The records, one per instrument and time in the fetch records' form, carry the drops of
    every stage (fetch included) and key each stack to the grid time it was fetched for.
    """
    stacks, targets, records = [], [], []
    for d in prepared_dirs:
        index = read_prepared_index(d)
        instrument = check_document(index, Path(d) / INDEX_NAME, "a preparation index",
                                    ("instrument",))["instrument"]
        if instrument not in (TRAINING_INPUT, TRAINING_TARGET):
            raise InputDataError(d, f"holds {instrument} data; the manifest pairs {TRAINING_INPUT} "
                                 f"with {TRAINING_TARGET}",
                                 reason="wrong_channel")
        for e in index["times"]:
            records.append({"instrument": instrument, "channel": "",
                            "requested_time": parse_time_key(e["time"]).isoformat(),
                            "status": e["status"], "reason": e.get("reason", ""),
                            "detail": f"{e['stage']}: {e.get('detail', '')}" if e.get("stage")
                            else e.get("detail", ""),
                            "obs_time": e.get("obs_time")})
            if e["status"] == "ok":
                made = e.get("stack") or e.get("target")
                if not made:
                    raise InputDataError(Path(d) / INDEX_NAME, f"entry {e['time']} is ok but "
                                         "names no stack or target", reason="corrupt_index")
                (stacks if instrument == TRAINING_INPUT else targets).append(made)
    return stacks, targets, records
