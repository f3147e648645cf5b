"""Pairs, manifest and train/eval split of the dataset (no torch here).

* :func:`build_manifest` pairs each AIA stack with the HMI target nearest in time (within a
  tolerance), gives every ok pair a split, and adds one 'dropped' row, with the reason, for
  every time whose frames were dropped (fetch records) or that found no partner.
* the split (``config.schedule.split_months``, which the workflow plans with) chooses, per year,
  ``eval_months`` months for evaluation at random with a fixed seed; the rest train. Splitting
  by whole months means no time is in both splits.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from farside_gan.config.schedule import split_months
from farside_gan.core.documents import check_document, read_json
from farside_gan.core.fitsio import atomic_output, read_header
from farside_gan.core.instruments import (INSTRUMENTS, MANIFEST_TIME_FORMAT, TRAINING_INPUT,
                                          TRAINING_TARGET, obs_time, parse_time, reference_time)

MANIFEST_COLUMNS = ("time", "split", "input", "target", "status", "reason", "detail")


# ----------------------------------------------------------------------------- split

def split_of(time: datetime, eval_by_year: dict[int, tuple[int, ...]]) -> str:
    return "eval" if time.month in eval_by_year.get(time.year, ()) else "train"


# ----------------------------------------------------------------------------- manifest

@dataclass
class _Frame:
    path: str
    time: datetime       # mid-exposure (reference) time, for pairing
    date_obs: datetime   # DATE-OBS, as the fetch record has it


def _read_times(paths, what: str = "headers") -> list[_Frame]:
    from tqdm import tqdm

    frames = []
    for p in tqdm(list(paths), desc=f"reading {what}", unit="file", disable=None, leave=False):
        header = read_header(p)
        frames.append(_Frame(os.fspath(p), reference_time(header, p), obs_time(header, p)))
    return frames


#: What the manifest reads of every fetch record.
RECORD_KEYS = ("instrument", "requested_time", "status")


def load_records(paths) -> list[dict]:
    """Fetch records (``record.json``); a file may hold one record or a list of them."""
    records = []
    for p in paths:
        data = read_json(p, "a fetch record", kind=(dict, list))
        for rec in data if isinstance(data, list) else [data]:
            check_document(rec, p, "a fetch record", RECORD_KEYS)
            rec.setdefault("record_file", os.fspath(p))
            records.append(rec)
    return records


def build_manifest(records=(), stacks=(), targets=(), pair_tolerance="6m", seed: int = 0,
                   eval_months: int = 2) -> list[dict]:
    """Rows (dicts with ``MANIFEST_COLUMNS``), one per observation time, sorted by time.

    ``records``: fetch records (dicts); the dropped AIA/HMI ones become dropped rows at their
    requested time (the first reason per time wins). ``stacks``/``targets``: paths of AIA stacks
    and normalized HMI frames; their times are read from their headers.
    """
    from farside_gan.core.times import parse_duration

    tolerance = parse_duration(pair_tolerance)
    stack_frames_ = sorted(_read_times(stacks, "stacks"), key=lambda f: f.time)
    target_frames = sorted(_read_times(targets, "targets"), key=lambda f: f.time)
    target_times = np.array([f.time.timestamp() for f in target_frames])

    # (DATE-OBS, requested time) of each fetched AIA frame, to key rows by the grid time
    aia_fetched: list[tuple[datetime, datetime]] = []
    drops: dict[datetime, dict] = {}
    for rec in records:
        if rec.get("instrument") not in (TRAINING_INPUT, TRAINING_TARGET):
            continue
        requested = parse_time(rec["requested_time"])
        if rec.get("status") == "ok" and rec.get("obs_time") \
                and rec["instrument"] == TRAINING_INPUT:
            aia_fetched.append((parse_time(rec["obs_time"]), requested))
        elif rec.get("status") != "ok" and requested not in drops:
            drops[requested] = {"reason": rec.get("reason") or "dropped",
                                "detail": f"{rec['instrument']} {rec.get('channel', '')}: "
                                          f"{rec.get('detail', '')}".strip()}

    rows, used_targets = [], set()
    for stack in stack_frames_:
        key = next((req for obs, req in aia_fetched
                    if abs((obs - stack.date_obs).total_seconds()) < 1.0), stack.time)
        if key in drops:  # an HMI drop at this time: no usable target
            continue
        row = {"time": key, "split": "", "input": stack.path, "target": "", "status": "ok",
               "reason": "", "detail": ""}
        if target_times.size:
            i = int(np.argmin(np.abs(target_times - stack.time.timestamp())))
            if abs(target_frames[i].time - stack.time) <= tolerance:
                row["target"] = target_frames[i].path
                used_targets.add(i)
        if not row["target"]:
            row.update(status="dropped", reason="no_partner",
                       detail=f"no {INSTRUMENTS[TRAINING_TARGET].label} target within "
                              f"{tolerance} of {stack.time:{MANIFEST_TIME_FORMAT}}")
        rows.append(row)
    have = {r["time"] for r in rows}
    for t, drop in drops.items():
        if t not in have:
            rows.append({"time": t, "split": "", "input": "", "target": "", "status": "dropped",
                         **drop})
    rows.sort(key=lambda r: r["time"])
    eval_by_year = split_months([r["time"].year for r in rows], seed, eval_months)
    for r in rows:
        if r["status"] == "ok":
            r["split"] = split_of(r["time"], eval_by_year)
        r["time"] = r["time"].strftime(MANIFEST_TIME_FORMAT)
    return rows


def write_manifest(path, rows) -> Path:
    with atomic_output(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            for r in rows:
                writer.writerow({k: r.get(k, "") for k in MANIFEST_COLUMNS})
    return Path(path)


def read_manifest(path, split: str | None = None, status: str | None = "ok") -> list[dict]:
    """Manifest rows, optionally only one split and/or status ('ok' by default; None for all)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if (split is None or r["split"] == split)
            and (status is None or r["status"] == status)]
