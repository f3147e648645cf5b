"""Instrument headers and observers: what the real AIA, HMI and SECCHI/EUVI files carry.

Reference headers are sunpy's test files (``aia_171_level1.fits``, ``resampled_hmi.fits``,
``euvi_20090615_000900_n4euA_s.header``). Keyword values are realistic; pointing gets small random
offsets and rolls so calibration has real work to do.

Observers: SDO sits at Earth (``sunpy.coordinates.get_earth``; SDO's geosynchronous orbit is
ignored, HGLN_OBS = 0 as in real AIA headers). STEREO positions need the JPL Horizons service
(``get_horizons_coord``), which these machines cannot reach, and are not in astropy's built-in
planetary ephemeris, so they come from an offline approximation: each spacecraft drifts away from
Earth along the ecliptic at a constant rate anchored on real positions (A: 51.8 deg ahead on
2009-06-15 per sunpy's EUVI test header, passing Earth again in Aug 2023; B: ~ -91 deg on
2011-02-06, when A and B were 180 deg apart). Heliocentric Earth ecliptic longitude -> Stonyhurst
via sunpy's frames gives the latitude (the 7.25 deg solar-equator tilt). Accuracy: a few degrees
in longitude, ~1% in distance -- "roughly the real position", which is what the synthetic data
needs (the geometry of every file is self-consistent whatever the exact position).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

RSUN_REF = 696_000_000.0
AU = 149_597_870_691.0
FULL_SIZE = {"aia": 4096, "hmi": 4096, "euvi_a": 2048, "euvi_b": 2048}
FULL_CDELT = {"aia": 0.600698, "hmi": 0.504295, "euvi_a": 1.58777, "euvi_b": 1.58777}

# (anchor time, HEE longitude at anchor in deg, drift in deg/day, mean distance in AU)
STEREO_ORBITS = {
    "euvi_a": (datetime(2009, 6, 15, 0, 9), 51.80, 360.0 / (datetime(2023, 8, 12) - datetime(2006, 12, 28)).days, 0.962),
    "euvi_b": (datetime(2011, 2, 6), -91.0, -22.3 / 365.25, 1.040),
}

AIA_CHANNELS = {  # wavelength: (INSTRUME camera, WAVE_STR, nominal EXPTIME s, DATE-OBS offset s)
    304: ("AIA_4", "304", 2.901, 7.13),
    193: ("AIA_2", "193", 2.000, 4.84),
    171: ("AIA_3", "171_THIN", 2.000, 0.34),
}
EUVI_CHANNELS = {  # wavelength: (FILTER, nominal EXPTIME s, DATE-OBS offset s from the nominal time)
    304: ("S1", 4.0, 375.0),
    195: ("S2", 8.0, 330.0),
    171: ("S1", 4.0, 540.0),
}
HMI_CADENCE_S = 720.0
#: Periods with data: STEREO-B fell silent on 2014-10-01 (the real archive has nothing after).
MISSION_SPANS = {"euvi_a": (datetime(2006, 12, 1), None), "euvi_b": (datetime(2007, 1, 21), datetime(2014, 10, 1)),
                 "aia": (datetime(2010, 5, 13), None), "hmi": (datetime(2010, 4, 30), None)}


def has_data(instrument: str, time: datetime) -> bool:
    """Whether the real instrument observed at ``time`` (the synthetic archive mirrors the gaps)."""
    start, end = MISSION_SPANS[instrument]
    return start <= time and (end is None or time < end)


@dataclass(frozen=True)
class Observer:
    hgln: float   # deg, Stonyhurst
    hglt: float   # deg
    dsun: float   # m
    crln: float   # deg, Carrington
    crlt: float


def observer_for(instrument: str, time: datetime) -> Observer:
    """Observer position for an instrument at ``time`` (UTC), offline (see module docstring)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from sunpy.coordinates import (HeliocentricEarthEcliptic, HeliographicCarrington,
                                   HeliographicStonyhurst, get_earth)
    if instrument in ("aia", "hmi"):
        hgs = get_earth(time)
    else:
        anchor, lon0, rate, dist = STEREO_ORBITS[instrument]
        days = (time - anchor).total_seconds() / 86400.0
        hee_lon = lon0 + rate * days
        # Small eccentricity: distance oscillates over the orbit (+-0.5% for A, +-4% for B).
        ecc = 0.005 if instrument == "euvi_a" else 0.04
        period = 346.0 if instrument == "euvi_a" else 388.0
        distance = dist * (1.0 - ecc * np.cos(2 * np.pi * days / period))
        hgs = SkyCoord(hee_lon * u.deg, 0 * u.deg, distance * AU * u.m,
                       frame=HeliocentricEarthEcliptic(obstime=time)).transform_to(
            HeliographicStonyhurst(obstime=time))
    car = hgs.transform_to(HeliographicCarrington(observer="self", obstime=time))
    hgln = 0.0 if instrument in ("aia", "hmi") else float(((hgs.lon.deg + 180.0) % 360.0) - 180.0)
    return Observer(hgln=hgln, hglt=float(hgs.lat.deg), dsun=float(hgs.radius.to_value(u.m)),
                    crln=float(car.lon.deg % 360.0), crlt=float(car.lat.deg))


def _iso(t: datetime, digits: int = 2) -> str:
    s = t.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return s[: len(s) - (6 - digits)] if digits else s[:19]


def tai_offset_seconds(time: datetime) -> float:
    from astropy.time import Time
    t = Time(time, scale="utc")
    return float((t.tai.to_datetime() - t.to_datetime()).total_seconds())


@dataclass
class Timing:
    """The times one observation carries. ``reference`` is the UTC time sunpy's Map uses for its
    coordinates (T_OBS for AIA/HMI, DATE-AVG for EUVI); ``name_time`` the time in the file name."""
    date_obs: datetime
    reference: datetime
    name_time: datetime
    keywords: dict


def timing_for(instrument: str, channel, time: datetime, exptime: float) -> Timing:
    if instrument == "aia":
        date_obs = time + timedelta(seconds=AIA_CHANNELS[int(channel)][3])
        t_obs = date_obs + timedelta(seconds=exptime / 2.0)
        t_rec = (t_obs + timedelta(seconds=0.5)).replace(microsecond=0)
        return Timing(date_obs, t_obs, t_rec, {
            "DATE-OBS": _iso(date_obs), "T_OBS": _iso(t_obs) + "Z", "T_REC": _iso(t_rec, 0) + "Z"})
    if instrument == "hmi":
        # 720 s records sit on TAI slot boundaries; T_REC/T_OBS are TAI, DATE-OBS UTC (start).
        leap = tai_offset_seconds(time)
        tai = time + timedelta(seconds=leap)
        slot = HMI_CADENCE_S * round((tai - datetime(1993, 1, 1)).total_seconds() / HMI_CADENCE_S)
        t_rec_tai = datetime(1993, 1, 1) + timedelta(seconds=slot)
        t_obs_utc = t_rec_tai - timedelta(seconds=leap)
        date_obs = t_obs_utc - timedelta(seconds=HMI_CADENCE_S / 2)
        tai_str = t_rec_tai.strftime("%Y.%m.%d_%H:%M:%S") + "_TAI"
        return Timing(date_obs, t_obs_utc, t_rec_tai, {
            "DATE-OBS": _iso(date_obs), "T_OBS": tai_str, "T_REC": tai_str})
    date_obs = time + timedelta(seconds=EUVI_CHANNELS[int(channel)][2])
    avg = date_obs + timedelta(seconds=exptime / 2.0)
    end = date_obs + timedelta(seconds=exptime)
    return Timing(date_obs, avg, date_obs.replace(microsecond=0), {
        "DATE-OBS": _iso(date_obs, 3), "DATE-AVG": _iso(avg, 3), "DATE-END": _iso(end, 3)})


@dataclass
class Pointing:
    """Pointing jitter: CRPIX offset (pixels), CRVAL (arcsec of the reference pixel), roll (deg)."""
    crpix_offset: tuple[float, float]
    roll: float


def random_pointing(instrument: str, size: int, rng: np.random.Generator) -> Pointing:
    scale = size / FULL_SIZE[instrument]
    if instrument == "aia":
        return Pointing(tuple(rng.uniform(-12, 12, 2) * scale), float(rng.uniform(-0.15, 0.15)))
    if instrument == "hmi":
        return Pointing(tuple(rng.uniform(-10, 10, 2) * scale), float(180.0 + rng.uniform(-0.2, 0.2)))
    return Pointing(tuple(rng.uniform(-25, 25, 2) * scale), float(rng.uniform(-8.0, 8.0)))


def base_header(instrument: str, channel, size: int, timing: Timing, observer: Observer,
                pointing: Pointing, exptime: float, quality: int = 0) -> dict:
    """Header keywords (ordered dict) of a level-1 AIA/HMI or level-0.5 EUVI file."""
    cdelt = FULL_CDELT[instrument] * FULL_SIZE[instrument] / size
    crpix = ((size + 1) / 2.0 + pointing.crpix_offset[0], (size + 1) / 2.0 + pointing.crpix_offset[1])
    # Reference pixel points slightly off Sun centre (arcsec): the pointing offset made explicit.
    crval = (pointing.crpix_offset[0] * cdelt * 0.5, pointing.crpix_offset[1] * cdelt * 0.5)
    rsun_obs = float(np.degrees(np.arcsin(RSUN_REF / observer.dsun)) * 3600.0)
    theta = np.radians(pointing.roll)
    pc = {"PC1_1": np.cos(theta), "PC1_2": -np.sin(theta), "PC2_1": np.sin(theta), "PC2_2": np.cos(theta)}
    wcs = {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec",
           "CRPIX1": crpix[0], "CRPIX2": crpix[1], "CRVAL1": crval[0], "CRVAL2": crval[1],
           "CDELT1": cdelt, "CDELT2": cdelt}
    obs = {"DSUN_OBS": observer.dsun, "HGLN_OBS": observer.hgln, "HGLT_OBS": observer.hglt,
           "CRLN_OBS": observer.crln, "CRLT_OBS": observer.crlt, "RSUN_REF": RSUN_REF}
    # Sun centre in 0-based pixels, as AIA's master pointing (X0_MP/Y0_MP) records it.
    sun_x = crpix[0] - 1 - (np.cos(theta) * crval[0] + np.sin(theta) * crval[1]) / cdelt
    sun_y = crpix[1] - 1 - (-np.sin(theta) * crval[0] + np.cos(theta) * crval[1]) / cdelt
    if instrument == "aia":
        camera, wave_str, _, _ = AIA_CHANNELS[int(channel)]
        h = {"TELESCOP": "SDO/AIA", "INSTRUME": camera, "DETECTOR": "AIA", "ORIGIN": "SDO/JSOC-SDP",
             "OBSRVTRY": "SDO", "WAVELNTH": int(channel), "WAVEUNIT": "angstrom", "WAVE_STR": wave_str,
             "LVL_NUM": 1.0, "QUALITY": int(quality), "EXPTIME": exptime, "BUNIT": "DN",
             "PIXLUNIT": "DN", "IMG_TYPE": "LIGHT"}
        h.update(timing.keywords)
        h.update(wcs)
        h.update({"CROTA2": pointing.roll, "INST_ROT": pointing.roll, "SAT_ROT": 0.0})
        h.update(obs)
        h.update({"DSUN_REF": AU, "RSUN_OBS": rsun_obs, "R_SUN": rsun_obs / cdelt,
                  "X0_MP": sun_x * (FULL_SIZE["aia"] / size), "Y0_MP": sun_y * (FULL_SIZE["aia"] / size),
                  "IMSCL_MP": FULL_CDELT["aia"], "ACS_MODE": "SCIENCE", "ACS_ECLP": "NO"})
        return h
    if instrument == "hmi":
        h = {"TELESCOP": "SDO/HMI", "INSTRUME": "HMI_SIDE1", "DETECTOR": "HMI", "ORIGIN": "SDO/JSOC-SDP",
             "OBSRVTRY": "SDO", "CONTENT": "MAGNETOGRAM", "BUNIT": "Gauss", "WAVELNTH": 6173.0,
             "WAVEUNIT": "angstrom", "QUALITY": int(quality), "CADENCE": HMI_CADENCE_S}
        h.update(timing.keywords)
        h.update(wcs)
        h["CROTA2"] = pointing.roll
        h.update(obs)
        h.update({"DSUN_REF": AU, "RSUN_OBS": rsun_obs, "CRDER1": 0.0, "CRDER2": 0.0})
        return h
    sc = instrument[-1].upper()
    filt, _, _ = EUVI_CHANNELS[int(channel)]
    h = {"TELESCOP": "STEREO", "INSTRUME": "SECCHI", "DETECTOR": "EUVI", "OBSRVTRY": f"STEREO_{sc}",
         "ORIGIN": "NRL", "FILENAME": f"{timing.name_time:%Y%m%d_%H%M%S}_n4eu{sc}.fts",
         "WAVELNTH": int(channel), "FILTER": filt, "EXPTIME": exptime, "BUNIT": "DN",
         "DSATVAL": 14000, "IPSUM": 1.0, "SUMMED": 1.0, "POLAR": -1.0}
    h.update(timing.keywords)
    h.update(wcs)
    h.update({k: float(v) for k, v in pc.items()})
    h.update({"CROTA": pointing.roll, "SC_ROLL": pointing.roll, "LONPOLE": 180.0})
    h.update(obs)
    h.update({"RSUN": rsun_obs, "XCEN": crval[0], "YCEN": crval[1]})
    return h
