"""sunpy's Fido: EUVI from the VSO; AIA and HMI through Fido's JSOC client.

The VSO's HMI line-of-sight magnetograms (``Physobs('LOS_magnetic_field')``) are the 45-second
series, a noisier product than the ``hmi.M_720s`` the method trains on, and its AIA level 1 does
not say which series it is. So through Fido, AIA and HMI are asked of JSOC by series
(``a.jsoc.Series('hmi.M_720s')``, ``aia.lev1_euv_12s``), which needs the JSOC export address;
without it this source refuses them with that reason. The export is staged by sunpy's JSOC
client and its file downloaded like every other (resumable, bounded, verified). EUVI comes from
the VSO, downloaded by parfive (``connections`` at a time, each within the deadline).
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from farside_gan.acquire.jsoc import SEGMENT, STATUS_TOO_MANY, JsocSource, download_export_file
from farside_gan.acquire.transfer import (BACKOFF_S, DEADLINE_S, RETRIES, TIMEOUT_S, Candidate,
                                          DownloadError, TransientError, nearest, verify_file,
                                          with_retries)
from farside_gan.core.instruments import (EUV, INSTRUMENTS, SERIES, check_channel, parse_time,
                                          utc_time)


def _known_quality(value) -> int | None:
    """QUALITY of a Fido/JSOC row, None when unknown: sunpy's query converts it through drms,
    which (0.9, under pandas 3) turns JSOC's hexadecimal QUALITY into a masked value. An unknown
    QUALITY is not held against a record; the downloaded header's QUALITY is checked anyway."""
    import numpy as np

    if np.ma.is_masked(value):
        return None
    try:
        q = float(value)
    except (TypeError, ValueError):
        return None
    return int(q) if np.isfinite(q) else None


class FidoSource:
    """sunpy Fido for every instrument (AIA/HMI by JSOC series, EUVI from the VSO)."""

    def __init__(self, jsoc_email: str | None = None, retries: int = RETRIES,
                 backoff: float = BACKOFF_S, deadline_s: float | None = DEADLINE_S,
                 connections: int = 2, timeout: float = TIMEOUT_S, poll_s: float = 5.0,
                 export_timeout_s: float = 4 * 3600.0):
        self.jsoc_email, self.retries, self.backoff = jsoc_email, retries, backoff
        self.deadline_s, self.connections, self.timeout = deadline_s, max(1, int(connections)), timeout
        self.poll_s, self.export_timeout_s = poll_s, export_timeout_s

    def __str__(self):
        return "fido"

    def series(self, instrument: str) -> str:
        if instrument in SEGMENT and not self.jsoc_email:
            raise DownloadError(
                f"fido: {instrument.upper()} comes through Fido's JSOC client as {SERIES[instrument]} "
                "(the VSO's HMI LOS magnetograms are the 45-second series, not the method's "
                "hmi.M_720s), which needs a JSOC-registered export address: set fetch.jsoc_email "
                "(--jsoc-email)")
        return SERIES[instrument]

    @staticmethod
    def query_attrs(instrument: str, channel, time: datetime, tolerance: timedelta,
                    jsoc_email: str | None = None, t_rec: str | None = None) -> list:
        import astropy.units as u
        from sunpy.net import attrs as a

        spec = INSTRUMENTS[instrument]
        if instrument in SEGMENT:  # through Fido's JSOC client, by series
            if not jsoc_email:
                raise DownloadError(f"fido: {instrument} needs the JSOC export address")
            attrs = [a.jsoc.Series(SERIES[instrument]), a.jsoc.Notify(jsoc_email),
                     a.jsoc.Segment(SEGMENT[instrument])]
            attrs.append(a.jsoc.PrimeKey("T_REC", t_rec) if t_rec else
                         a.Time(time - tolerance, time + tolerance))
            if spec.role == EUV:
                attrs.append(a.Wavelength(int(channel) * u.angstrom))
            return attrs
        if spec.vso:  # from the VSO, by instrument and source
            vso_instrument, vso_source = spec.vso
            return [a.Time(time - tolerance, time + tolerance), a.Instrument(vso_instrument),
                    a.Source(vso_source), a.Wavelength(int(channel) * u.angstrom)]
        raise ValueError(f"fido: no JSOC series or VSO query known for {instrument!r}")

    def _search(self, *attrs):
        from sunpy.net import Fido

        def attempt():
            try:
                return Fido.search(*attrs)
            except (ConnectionError, OSError, TimeoutError) as exc:
                raise TransientError(str(exc)) from exc

        return with_retries(attempt, "fido search", self.retries, self.backoff)

    def search(self, instrument, channel, time, tolerance) -> Candidate:

        channel = check_channel(instrument, channel)
        self.series(instrument)
        what = f"fido {instrument} {channel}"
        result = self._search(*self.query_attrs(instrument, channel, time, tolerance, self.jsoc_email))
        rows = []
        for block in result:
            for i, row in enumerate(block):
                if instrument in SEGMENT:
                    t_obs = str(row["T_OBS"]) if "T_OBS" in row.colnames else ""
                    if not t_obs or "MISSING" in t_obs.upper():
                        continue
                    quality = _known_quality(row["QUALITY"]) if "QUALITY" in row.colnames else None
                    rows.append(Candidate(instrument, channel, utc_time(t_obs), str(row["T_REC"]),
                                          quality=quality))
                else:
                    rows.append(Candidate(instrument, channel, parse_time(row["Start Time"].isot),
                                          block[i:i + 1]))
        return nearest(rows, time, tolerance, what)

    def fetch(self, candidate: Candidate, dest: Path, partial: Path) -> dict:
        if candidate.instrument in SEGMENT:
            return self._fetch_jsoc(candidate, dest, partial)
        return self._fetch_vso(candidate, dest)

    def _fetch_jsoc(self, candidate: Candidate, dest: Path, partial: Path) -> dict:
        """Stage exactly the chosen record with sunpy's JSOC client, then download it resumably."""
        from sunpy.net import jsoc

        result = self._search(*self.query_attrs(candidate.instrument, candidate.channel,
                                                candidate.time, timedelta(0), self.jsoc_email,
                                                t_rec=candidate.location))
        block = next((b for b in result if len(b)), None)
        if block is None:
            raise DownloadError(f"fido: JSOC no longer lists {candidate.location}")
        helper = JsocSource(self.jsoc_email, self.retries, self.backoff, poll_s=self.poll_s,
                            export_timeout_s=self.export_timeout_s)

        def stage():
            request = jsoc.JSOCClient().request_data(block)
            if int(request.status) == STATUS_TOO_MANY:
                raise TransientError("JSOC is busy: too many pending export requests",
                                     retry_after=helper.busy_wait_s)
            return request

        request = helper._wait(helper._call(stage, f"export of {candidate.location}"),
                               str(candidate.location))
        return download_export_file(request, f"fido: JSOC export {request.id} of "
                                    f"{candidate.location}", dest, partial, timeout=self.timeout,
                                    deadline_s=self.deadline_s, retries=self.retries,
                                    backoff=self.backoff)

    def _fetch_vso(self, candidate: Candidate, dest: Path) -> dict:
        import aiohttp
        from parfive import SessionConfig
        from sunpy.net import Fido
        from sunpy.util.parfive_helpers import Downloader

        def attempt():
            downloader = Downloader(max_conn=self.connections, progress=False, overwrite=True,
                                    config=SessionConfig(timeouts=aiohttp.ClientTimeout(
                                        total=self.deadline_s, sock_read=self.timeout)))
            with tempfile.TemporaryDirectory(prefix=".fido.", dir=dest.parent) as tmpdir:
                files = Fido.fetch(candidate.location, path=os.path.join(tmpdir, "{file}"),
                                   downloader=downloader)
                if files.errors or not files:
                    raise TransientError(f"Fido.fetch: {files.errors}")
                verify_file(Path(files[0]), None, None, str(files[0]))
                os.replace(files[0], dest)
            return dest

        with_retries(attempt, f"fido {candidate.instrument} {candidate.channel}", self.retries, self.backoff)
        return {}
