"""Deliberately bad files, each the kind of defect the real archives deliver now and then.

``make_bad_files(directory)`` writes one file per defect with archive-style names and returns
``{defect: path}``; :data:`BAD_FILES` says, per defect, which observation the file claims to be
and the manifest reason code (docs/ARCHITECTURE.md) a quality check should give it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
from astropy.io import fits

from farside_gan.layout import Observation, archive_relpath
from farside_gan.synthetic.archive import _write_deterministic, plan_observation, write_plan

#: defect -> (instrument, channel the file is named / requested as, time, reason code).
#: Times are minutes apart so the files share one field surface (cheap to make).
BAD_FILES = {
    "truncated": ("aia", 171, datetime(2011, 1, 1, 0, 0), "corrupt_fits"),
    "missing_date_obs": ("aia", 171, datetime(2011, 1, 1, 0, 2), "missing_keyword"),
    "all_nan": ("hmi", "magnetogram", datetime(2011, 1, 1, 0, 4), "mostly_nan"),
    "quality_flagged": ("aia", 193, datetime(2011, 1, 1, 0, 6), "quality_flag"),
    "wrong_channel": ("aia", 171, datetime(2011, 1, 1, 0, 8), "wrong_channel"),
}
#: A QUALITY word with a flag set (non-zero means the frame should be dropped).
QUALITY_FLAG = 0x00020000


def make_bad_files(directory, size: int = 64, seed: int = 0, sun=None) -> dict[str, Path]:
    """Write the bad files into ``directory``; return ``{defect: path}``."""
    from farside_gan.synthetic.field import SyntheticSun
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sun = sun or SyntheticSun(seed=seed)
    paths = {}
    for defect, (instrument, channel, time, _) in BAD_FILES.items():
        content_channel = 193 if defect == "wrong_channel" else channel
        plan = plan_observation(instrument, content_channel, time, size=size, seed=seed,
                                **({"quality": QUALITY_FLAG} if defect == "quality_flagged" else {}))
        # Named as the observation it claims to be (for wrong_channel: a 171 name, 193 inside).
        name = Path(archive_relpath(Observation(instrument, channel, plan.timing.name_time))).name
        path = directory / name
        overrides = {"DATE-OBS": None} if defect == "missing_date_obs" else None
        write_plan(path, plan, sun, seed=seed, header_overrides=overrides)
        if defect == "all_nan":
            header = fits.getheader(path)
            for key in ("CHECKSUM", "DATASUM", "DATAMIN", "DATAMAX", "DATAMEAN"):
                header.remove(key, ignore_missing=True)
            keywords = {k: v for k, v in header.items() if k not in ("SIMPLE", "BITPIX", "NAXIS",
                                                                      "NAXIS1", "NAXIS2", "EXTEND")}
            _write_deterministic(path, np.full((size, size), np.nan, dtype=np.float32), keywords,
                                 header["DATE"])
        if defect == "truncated":
            # Cut the file in the middle of its data unit, as an interrupted download does.
            data_bytes = fits.getdata(path).nbytes
            raw = path.read_bytes()
            path.write_bytes(raw[: len(raw) - data_bytes // 2 - 1000])
        paths[defect] = path
    return paths
