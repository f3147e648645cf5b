"""Write synthetic observations as the real archives deliver them, and the archive catalog.

``write_observation`` renders one file; ``build_archive`` lays a set out under a root with
:func:`farside_gan.core.instruments.archive_relpath` names and writes ``catalog.csv``. Files are
byte-for-byte deterministic for a seed: no wall-clock time goes into them (DATE and the checksum
comments derive from the observation time).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from astropy.io import fits

from farside_gan import __version__
from farside_gan.core.fitsio import atomic_output, sha256_of
from farside_gan.core.instruments import (CATALOG_CHECKSUM_NAME, CATALOG_COLUMNS, CATALOG_NAME,
                                          Observation, archive_relpath, catalog_checksum_line,
                                          check_archive_path, check_catalog_checksum, check_channel)
from farside_gan.core.instruments import INSTRUMENTS as REGISTRY
from farside_gan.synthetic import instruments as inst

INSTRUMENTS = tuple(REGISTRY)
log = logging.getLogger(__name__)


def as_datetime(time) -> datetime:
    """Naive UTC datetime from a datetime, ISO string or astropy Time."""
    if isinstance(time, datetime):
        return time if time.tzinfo is None else time.astimezone(timezone.utc).replace(tzinfo=None)
    from astropy.time import Time
    return Time(time).utc.to_datetime()


@dataclass
class Plan:
    """Everything about one observation except its pixels."""
    instrument: str
    channel: int | str
    header: dict
    timing: inst.Timing
    size: int
    exptime: float
    rng: np.random.Generator
    noise: bool

    @property
    def relpath(self) -> str:
        return archive_relpath(Observation(self.instrument, self.channel, self.timing.name_time))

    @property
    def reference_time(self) -> datetime:
        return self.timing.reference


def _rng(seed: int, instrument: str, channel, time: datetime) -> np.random.Generator:
    code = zlib.crc32(f"{instrument}/{channel}".encode())
    return np.random.default_rng([int(seed), code, int(round((time - datetime(1970, 1, 1)).total_seconds()))])


def plan_observation(instrument: str, channel, time, size: int = 256, seed: int = 0, **overrides) -> Plan:
    """Header, timing and noise generator of an observation at nominal ``time`` (UTC).

    Lowercase ``overrides``: ``exptime`` (s), ``quality`` (int), ``roll`` (deg), ``crpix_offset``
    ((dx, dy) pixels), ``noise`` (bool). Uppercase ones replace header keywords after rendering
    (``None`` deletes the keyword) -- for making deliberately bad files.
    """
    channel = check_channel(instrument, channel)
    time = as_datetime(time)
    rng = _rng(seed, instrument, channel, time)
    pointing = inst.random_pointing(instrument, size, rng)
    if "roll" in overrides:
        pointing.roll = float(overrides["roll"])
    if "crpix_offset" in overrides:
        pointing.crpix_offset = tuple(overrides["crpix_offset"])
    if instrument == "aia":
        nominal = inst.AIA_CHANNELS[channel][2]
        # Automatic exposure control shortens some exposures (flares): normalization must matter.
        exptime = nominal * (rng.uniform(0.5, 0.9) if rng.random() < 0.15 else rng.uniform(0.998, 1.0))
    elif instrument == "hmi":
        exptime = inst.HMI_CADENCE_S
    else:
        exptime = inst.EUVI_CHANNELS[channel][1] * float(rng.choice([0.5, 1.0, 1.0, 2.0]))
    exptime = float(overrides.get("exptime", round(exptime, 6)))
    timing = inst.timing_for(instrument, channel, time, exptime)
    observer = inst.observer_for(instrument, timing.reference)
    header = inst.base_header(instrument, channel, size, timing, observer, pointing, exptime,
                              quality=int(overrides.get("quality", 0)))
    if instrument == "hmi":
        header.pop("EXPTIME", None)
    return Plan(instrument, channel, header, timing, size, exptime, rng, bool(overrides.get("noise", True)))


def render(plan: Plan, sun):
    """Pixels of a planned observation: a :class:`farside_gan.synthetic.euv.Frame`."""
    from farside_gan.synthetic.euv import render_euv, render_magnetogram
    from farside_gan.synthetic.projection import Geometry
    geometry = Geometry.from_target(_fits_header(plan.header, plan.size))
    ratio = inst.FULL_SIZE[plan.instrument] / plan.size
    if plan.instrument == "hmi":
        return render_magnetogram(sun, geometry, ratio, plan.rng, noise=plan.noise)
    return render_euv(sun, geometry, plan.instrument, plan.channel, plan.exptime, ratio, plan.rng,
                      noise=plan.noise)


def _fits_header(keywords: dict, size: int) -> fits.Header:
    header = fits.Header()
    header["NAXIS"] = 2
    header["NAXIS1"] = size
    header["NAXIS2"] = size
    for key, value in keywords.items():
        header[key] = float(value) if isinstance(value, np.floating) else value
    return header


def _write_deterministic(path: Path, data: np.ndarray, keywords: dict, stamp: str) -> None:
    hdu = fits.PrimaryHDU(data=data)
    for key, value in keywords.items():
        if value is None:
            hdu.header.remove(key, ignore_missing=True)
        else:
            hdu.header[key] = float(value) if isinstance(value, np.floating) else value
    hdu.add_checksum(when=f"HDU checksum updated {stamp}")
    with atomic_output(path, suffix=".fits") as tmp:
        hdu.writeto(tmp, overwrite=True, checksum=False)


def write_observation(path, sun, instrument: str, channel, time, size: int = 256, seed: int = 0,
                      **overrides) -> Path:
    """Render and write one level-1-like file (AIA/HMI level 1, EUVI level 0.5), atomically."""
    plan = plan_observation(instrument, channel, time, size=size, seed=seed, **overrides)
    return write_plan(path, plan, sun, seed=seed,
                      header_overrides={k: v for k, v in overrides.items() if k.isupper()})


def write_plan(path, plan: Plan, sun, seed: int = 0, header_overrides: dict | None = None) -> Path:
    frame = render(plan, sun)
    keywords = dict(plan.header)
    data = frame.data
    finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
    stamp = (plan.timing.date_obs + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    keywords.update({"DATE": stamp, "DATAMIN": float(finite.min()) if finite.size else 0.0,
                     "DATAMAX": float(finite.max()) if finite.size else 0.0,
                     "DATAMEAN": float(finite.mean(dtype=np.float64)) if finite.size else 0.0,
                     "CREATOR": "farside-gan synthetic Sun", "SYNVERS": __version__,
                     "SYNSEED": int(sun.seed), "NOISSEED": int(seed)})
    if plan.instrument == "aia":
        keywords["BLANK"] = -32768
    keywords.update(header_overrides or {})
    _write_deterministic(Path(path), data, keywords, stamp)
    return Path(path)



def write_catalog(root, rows: list[dict]) -> Path:
    """Write ``root/catalog.csv`` (columns ``layout.CATALOG_COLUMNS``), sorted, and its
    ``catalog.csv.sha256``, each atomically (a reader between the two sees a mismatch, not a
    short catalog it would take for complete)."""
    root = Path(root)
    rows = sorted(rows, key=lambda r: (r["instrument"], str(r["channel"]), r["time"], r["path"]))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CATALOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        check_archive_path(r["path"])
        writer.writerow({k: r[k] for k in CATALOG_COLUMNS})
    body = out.getvalue().encode()
    with atomic_output(root / CATALOG_NAME, suffix=".csv") as tmp:
        tmp.write_bytes(body)
    with atomic_output(root / CATALOG_CHECKSUM_NAME, suffix=".sha256") as tmp:
        tmp.write_text(catalog_checksum_line(body))
    return root / CATALOG_NAME


def read_catalog(root) -> list[dict]:
    """Rows of ``root/catalog.csv`` (size as int, channel as written: '171' or 'magnetogram'),
    checked against ``catalog.csv.sha256``."""
    body = (Path(root) / CATALOG_NAME).read_bytes()
    problem = check_catalog_checksum(body, (Path(root) / CATALOG_CHECKSUM_NAME).read_text())
    if problem:
        raise ValueError(f"{root}: {problem}")
    rows = list(csv.DictReader(body.decode().splitlines()))
    for row in rows:
        row["size"] = int(row["size"])
    return rows


def catalog_row(root, plan: Plan) -> dict:
    path = Path(root) / plan.relpath
    return {"instrument": plan.instrument, "channel": plan.channel,
            "time": plan.reference_time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            "path": plan.relpath, "size": path.stat().st_size, "sha256": sha256_of(path)}


def build_archive(root, times, instruments=INSTRUMENTS, size: int = 256, euvi_size: int | None = None,
                  seed: int = 0, sun=None, progress: bool = False, workers: int = 1) -> list[dict]:
    """Write every channel of ``instruments`` at each nominal time under ``root`` and the catalog.

    ``euvi_size`` defaults to ``size``. Like the real archives, there is nothing outside an
    instrument's data period (``instruments.MISSION_SPANS``: no STEREO-B after 2014-10-01).
    Rows already in an existing catalog are kept (the archive can grow); returns all catalog rows.
    ``workers`` > 1 renders times in parallel processes (the files do not depend on it).
    """
    from farside_gan.synthetic.field import SyntheticSun
    root = Path(root)
    sun = sun or SyntheticSun(seed=seed)
    write_sun_parameters(root, sun)  # first: refuses to mix two Suns in one archive
    times = [as_datetime(t) for t in times]
    for i in instruments:
        inst_channels(i)  # unknown instruments fail before any work
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(times), unit="time", desc="synthetic archive", mininterval=5,
                   disable=None)  # a bar on a terminal only, not in a job's log
    rows = {}
    if (root / CATALOG_NAME).exists():
        rows = {r["path"]: r for r in read_catalog(root)}
    skipped = set()
    jobs = [(root, t, tuple(instruments), size, euvi_size, seed) for t in times]
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=_init_worker,
                                 initargs=(sun.parameters(),)) as pool:
            # contiguous chunks: a worker reuses its Sun's cached surface and network of a day
            results = pool.map(_write_time_job, jobs, chunksize=max(1, len(jobs) // (4 * workers)))
            for new_rows, new_skipped in results:
                rows.update(new_rows)
                skipped |= new_skipped
                if bar is not None:
                    bar.update()
    else:
        for job in jobs:
            new_rows, new_skipped = write_time(*job, sun=sun)
            rows.update(new_rows)
            skipped |= new_skipped
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    for instrument, time in sorted(skipped):
        log.info("no %s data at %s: outside the mission's data period %s", instrument, time,
                 inst.MISSION_SPANS[instrument])
    write_catalog(root, list(rows.values()))
    return read_catalog(root)


def write_time(root: Path, time: datetime, instruments, size: int, euvi_size: int | None,
               seed: int, sun) -> tuple[dict, set]:
    """Every channel of ``instruments`` at one time: ({relpath: catalog row}, {skipped})."""
    rows, skipped = {}, set()
    for instrument in instruments:
        if not inst.has_data(instrument, time):
            skipped.add((instrument, time))
            continue
        s = (euvi_size or size) if instrument.startswith("euvi") else size
        for channel in inst_channels(instrument):
            plan = plan_observation(instrument, channel, time, size=s, seed=seed)
            write_plan(root / plan.relpath, plan, sun, seed=seed)
            rows[plan.relpath] = catalog_row(root, plan)
    return rows, skipped


_WORKER_SUN = None


def _init_worker(parameters: dict) -> None:
    global _WORKER_SUN
    from farside_gan.synthetic.field import SyntheticSun
    _WORKER_SUN = SyntheticSun(**parameters)


def _write_time_job(job):
    return write_time(*job, sun=_WORKER_SUN)


SUN_PARAMETERS_NAME = "synthetic_sun.json"


def write_sun_parameters(root, sun) -> Path:
    """``root/synthetic_sun.json``: the Sun the archive shows, so its truth can be recomputed."""
    path = Path(root) / SUN_PARAMETERS_NAME
    if path.exists():
        recorded = json.loads(path.read_text())
        if recorded != sun.parameters():
            raise ValueError(f"{path}: the archive shows a synthetic Sun with {recorded}; "
                             f"not adding files of another ({sun.parameters()})")
    with atomic_output(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(sun.parameters(), indent=1) + "\n")
    return path


def read_sun(root_or_file):
    """The :class:`SyntheticSun` an archive was made of (its ``synthetic_sun.json``)."""
    from farside_gan.core.errors import InputDataError
    from farside_gan.synthetic.field import SyntheticSun
    path = Path(root_or_file)
    if path.is_dir():
        path = path / SUN_PARAMETERS_NAME
    try:
        parameters = json.loads(path.read_text())
        return SyntheticSun(**parameters)
    except (OSError, ValueError, TypeError) as exc:
        raise InputDataError(path, f"not a synthetic Sun's parameters ({exc})",
                             reason="corrupt_index") from exc


def inst_channels(instrument: str):
    from farside_gan.core.instruments import CHANNELS
    if instrument not in CHANNELS:
        raise ValueError(f"unknown instrument {instrument!r}; expected one of {sorted(CHANNELS)}")
    return CHANNELS[instrument]
