"""What a synthetic truth file knows beyond the truth: the sign-blind ceiling, the active
regions on the disk (``farside_gan.core.truth_file``), and the scores built on them: the
anti-Hale flag of a map and the leading polarity of each region, once per passage.

A *passage* of a region is a run of consecutive maps of one comparison (one observer) in which
the region is on the disk, with no two maps of the run more than :data:`MAX_PASSAGE_GAP_DAYS`
apart. A region is scored once per passage, on the map where it is closest to disk centre
(largest mu), so the summary counts regions, not the days they spend on the disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from farside_gan.core import metrics
from farside_gan.core.errors import InputDataError
from farside_gan.core.truth_file import CEILING_EXTNAME, REGION_COLUMNS, REGIONS_EXTNAME

#: A map is flagged anti-Hale when an anti-Hale region on its disk carries at least this share
#: of the map's true unsigned flux: the regions whose wrong sign moves the sign-blind ceiling's
#: binned CC by more than 0.03, the smallest run-to-run spread of a model's mean binned CC. The
#: region's share is FLUX x MU^2 / the truth's unsigned flux (a radial field seen at mu: B x mu
#: over an area x mu of the image plane). A share, not a flux: the same region matters more on a
#: quiet disk. Measured on three synthetic Suns (seeds 0-2), 2009-08 to 2013-12 every 8 days,
#: Earth's view at 128 px, each anti-Hale region's sign put right in the ceiling in turn (334
#: region-maps of 114 regions): below 2%, none of 188 moved the CC by more than 0.03 (at most
#: 0.023, median 0.002); at or above it, 108 of 146 (median 0.077). A fixed 1e22 Mx missed 3 (up
#: to 0.076, on quiet disks) and flagged 90 that moved it less.
MIN_ANTI_HALE_FLUX_SHARE = 0.02
#: Half a synodic rotation (27.28 d): in that time a region crosses the disk from limb to limb,
#: so maps further apart than this cannot show one passage.
MAX_PASSAGE_GAP_DAYS = 13.6


@dataclass
class TruthExtras:
    """The ceiling (G, the truth's grid) and the region rows of a truth file; None where the file
    has no such extension (a real magnetogram)."""
    ceiling: np.ndarray | None = None
    regions: list[dict] | None = None


def read_truth_extras(path) -> TruthExtras:
    """The ``CEILING`` and ``REGIONS`` extensions of a truth file (an error naming the file when
    one is there but unreadable or incomplete)."""
    from astropy.io import fits
    extras = TruthExtras()
    try:
        with fits.open(path) as hdul:
            names = [h.name for h in hdul]
            if CEILING_EXTNAME in names:
                data = hdul[CEILING_EXTNAME].data
                if data is None or data.ndim != 2:
                    raise InputDataError(path, f"extension {CEILING_EXTNAME} holds no 2-D image",
                                         reason="corrupt_fits")
                extras.ceiling = np.asarray(data, np.float32)
            if REGIONS_EXTNAME in names:
                table = hdul[REGIONS_EXTNAME].data
                columns = [c[0] for c in REGION_COLUMNS]
                have = table.columns.names if table is not None else []
                missing = [c for c in columns if c not in have]
                if table is not None and missing:
                    raise InputDataError(path, f"extension {REGIONS_EXTNAME} lacks the column(s) "
                                         f"{', '.join(missing)}", reason="missing_keyword")
                extras.regions = [] if table is None else [
                    {c: _plain(row[c]) for c in columns} for row in table]
    except InputDataError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InputDataError(path, f"unreadable truth extensions ({exc})",
                             reason="corrupt_fits") from exc
    return extras


def _plain(value):
    """A FITS table cell as a Python value."""
    if isinstance(value, (bytes, str)):
        return value.decode() if isinstance(value, bytes) else value.strip()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return int(value) if isinstance(value, (np.integer, int)) else float(value)


def flux_share(region: dict, unsigned_flux_mx: float) -> float:
    """The share of a map's unsigned flux (Mx, through the image plane) a region carries."""
    return region["FLUX"] * region["MU"] ** 2 / unsigned_flux_mx


def anti_hale_flag(regions: list[dict] | None, unsigned_flux_mx: float | None,
                   min_share: float = MIN_ANTI_HALE_FLUX_SHARE) -> float:
    """1.0 when an anti-Hale region on the disk carries at least ``min_share`` of the map's true
    unsigned flux (Mx), else 0.0; NaN without a region table or the flux in Mx (not known)."""
    if regions is None or not unsigned_flux_mx:
        return math.nan
    return float(any(r["ANTIHALE"] and flux_share(r, unsigned_flux_mx) >= min_share
                     for r in regions))


def score_regions(generated: np.ndarray, real: np.ndarray, disk: np.ndarray,
                  regions: list[dict], min_flux: float = metrics.MIN_AR_FLUX_MX) -> list[dict]:
    """One entry per region of the table: ``region``, ``anti_hale``, ``flux``, ``mu`` and
    ``right`` (whether the generated map gives its leading polarity the right sign; None when it
    carries less than ``min_flux`` Mx or its leading polarity has no pixel on the disk)."""
    out = []
    for r in regions:
        right = None
        if r["FLUX"] >= min_flux:
            right = metrics.leading_polarity_right(generated, real, disk,
                                                   (r["LEAD_X"], r["LEAD_Y"]),
                                                   (r["FOLL_X"], r["FOLL_Y"]), r["LEADSIGN"])
        out.append({"region": r["REGION"], "anti_hale": bool(r["ANTIHALE"]), "flux": r["FLUX"],
                    "mu": r["MU"], "right": right})
    return out


def mark_passages(entries: list[dict], max_gap_days: float = MAX_PASSAGE_GAP_DAYS) -> None:
    """Number each region's passages and mark the entry each passage is scored at, in place.

    ``entries``: one per (map, region) of one comparison, with ``map`` (the map's position in
    the comparison's time order), ``day`` (its time in days) and the :func:`score_regions` keys.
    Sets ``passage`` (1, 2, ... per region) and ``chosen`` (True on the largest-mu map of each
    passage).
    """
    by_region: dict[str, list[dict]] = {}
    for e in entries:
        by_region.setdefault(e["region"], []).append(e)
    for group in by_region.values():
        group.sort(key=lambda e: e["map"])
        passage, previous = 0, None
        runs: list[list[dict]] = []
        for e in group:
            if (previous is None or e["map"] != previous["map"] + 1
                    or e["day"] - previous["day"] > max_gap_days):
                passage += 1
                runs.append([])
            e["passage"], e["chosen"] = passage, False
            runs[-1].append(e)
            previous = e
        for run in runs:
            max(run, key=lambda e: e["mu"])["chosen"] = True
