"""EUV brightness driven by the synthetic field, and the image rendering of every instrument.

Surface emission per channel family (304: chromosphere / transition region; 193 = EUVI 195 and
171: corona) is computed on the heliographic grid from |B|: a fine-scale term (network, plage
bright over strong field) and a smoothed term (coronal loops spreading over and around active
regions), dimmed where the field is open (coronal holes: very dark in 193, less in 171 and 304) and
over sunspot umbrae (|B| > ~1.3 kG: dark in all three).
On the disk it is modulated by limb brightening (optically thin corona: longer path near the
limb); off the limb it falls off with height (coronal scale height) and is dimmer over the poles.
Counts are DN/s x EXPTIME with photon (Poisson-like, Gaussian approximation) and read noise, then
rounded to integer DN like the real level-1 / level-0.5 files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: (fine weight, fine B0, loop weight, loop B0, open-field dimming, limb brightening a,
#:  off-limb scale height Rsun, off-limb level at the limb relative to disk-centre quiet Sun)
EMISSION = {
    304: (1.2, 40.0, 0.6, 80.0, 0.30, 0.3, 0.015, 0.5),
    193: (0.3, 40.0, 3.0, 60.0, 0.85, 1.5, 0.08, 1.5),
    171: (0.6, 40.0, 2.0, 60.0, 0.60, 1.2, 0.05, 1.3),
}
#: |B| (G) where umbral darkening starts and where it is complete; the dimming per family.
UMBRA_G = (1300.0, 2000.0)
UMBRA_DIMMING = {304: 0.97, 193: 0.95, 171: 0.93}
#: Quiet-Sun disk-centre count rate (DN/s per pixel), as observed at full resolution.
QUIET_RATE = {("aia", 304): 25.0, ("aia", 193): 90.0, ("aia", 171): 130.0,
              ("euvi", 304): 120.0, ("euvi", 195): 25.0, ("euvi", 171): 60.0}
SATURATION = {"aia": 16383, "euvi": 14000}
READ_NOISE_DN = 1.2
HMI_NOISE_G = 8.0


def family(channel) -> int:
    """Emission family of a channel: EUVI 195 behaves like AIA 193."""
    return 193 if int(channel) == 195 else int(channel)


def emission_grid(sun, time, channel) -> np.ndarray:
    """Relative surface emission (quiet Sun ~ 1) of a channel family on the Sun's grid at ``time``."""
    key = ("euv", sun.field_time(time).isoformat(), family(channel))
    cache = sun._emission_cache
    if key in cache:
        return cache[key]
    surface = sun.surface(time)
    fine_w, fine_b, loop_w, loop_b, dim, *_ = EMISSION[family(channel)]
    e = 1.0 + fine_w * (surface["fine"] / fine_b) ** 0.7 + loop_w * (surface["loops"] / loop_b) ** 0.85
    e *= 1.0 - dim * surface["open"]
    # Sunspot umbrae (|B| above ~1.5 kG) are dark in the transition region and low corona: cool,
    # dense, strongly suppressed heating, loops rooted there bright only far from the footpoint.
    # Only compact, strong (mostly leading) spots have umbrae, so this marks the leading polarity.
    umbra = np.clip((surface["fine"] - UMBRA_G[0]) / (UMBRA_G[1] - UMBRA_G[0]), 0.0, 1.0)
    e = e * (1.0 - UMBRA_DIMMING[family(channel)] * umbra) + UMBRA_DIMMING[family(channel)] * umbra * 0.5
    if len(cache) >= 6:
        cache.pop(next(iter(cache)))
    cache[key] = e.astype(np.float32)
    return cache[key]


@dataclass
class Frame:
    data: np.ndarray        # as written: int16 (AIA), uint16 (EUVI), float32 (HMI)
    truth: np.ndarray       # noiseless physical values (DN/s or Gauss), float32


def render_euv(sun, geometry, instrument: str, channel, exptime: float, size_ratio: float,
               rng: np.random.Generator, noise: bool = True) -> Frame:
    """Render an EUV image in DN. ``size_ratio`` = full-resolution pixels per output pixel (1-D)."""
    from farside_gan.synthetic.field import sample_grid
    kind = "aia" if instrument == "aia" else "euvi"
    rate = QUIET_RATE[(kind, int(channel))]
    _, _, _, _, _, limb_a, scale_h, off_level = EMISSION[family(channel)]
    grid = emission_grid(sun, geometry.time, channel)
    l0 = geometry.carrington_l0()
    truth = np.empty(geometry.shape, dtype=np.float32)
    for sl, rays in geometry.chunks():
        on = rays["on"]
        block = np.empty(on.shape, dtype=np.float32)
        disk = sample_grid(grid, rays["lon"] + l0, rays["lat"], sun.grid_deg)
        block[on] = disk * (1.0 + limb_a * (1.0 - rays["mu"]) ** 2)
        rho = rays["rho"][~on]
        polar = np.abs(rays["pa_sin"][~on]) ** 4
        block[~on] = off_level * np.exp(-(rho - 1.0) / scale_h) * (1.0 - 0.5 * polar) + 0.004
        truth[sl] = block * np.float32(rate)
    dn = truth * np.float32(exptime)
    if noise:
        bin2 = np.float32(size_ratio * size_ratio)
        sigma = np.sqrt((np.maximum(dn, 0.0) + READ_NOISE_DN ** 2) / bin2)
        dn = dn + sigma * rng.standard_normal(dn.shape, dtype=np.float32)
    dn = np.clip(np.rint(dn), -10 if kind == "aia" else 0, SATURATION[kind])
    data = dn.astype(np.int16) if kind == "aia" else dn.astype(np.uint16)
    return Frame(data=data, truth=truth)


def render_magnetogram(sun, geometry, size_ratio: float, rng: np.random.Generator,
                       noise: bool = True) -> Frame:
    truth = sun.los_field(geometry)
    data = truth
    if noise:
        data = truth + np.float32(HMI_NOISE_G / size_ratio) * rng.standard_normal(truth.shape, dtype=np.float32)
    return Frame(data=data.astype(np.float32), truth=truth)
