"""Small stacks and targets in the pipeline's formats, for the model tests (no other stage needed).

Stacks: (3, N, N) float32 in [-1, 1] with a helioprojective WCS in axes 1-2, CTYPE3 'CHANNEL',
CHAN1..3, the observer keywords and the frame conventions (R_SUN, MASKRAD, NORMTGT/NORMCLO/NORMCHI);
targets: (N, N) normalized HMI with R_SUN, MASKRAD and NORMCLIP. The field is a
few bipoles on the disk; the EUV channels are local functions of it (one of them signed), so a
tiny generator can learn the mapping in a few hundred CPU steps.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from astropy.io import fits

from farside_gan.core import conventions
from farside_gan.core.fitsio import set_mjd_keywords, write_fits
from farside_gan.core.geometry import IMAGE_SIZE, MASK_RADIUS, RSUN_PX, disk_mask
from farside_gan.prepare.normalize import normalize_hmi

RSUN_OBS = 960.0  # arcsec, as seen from 1 au (both observers: the stage checks hold them to it)
OBSERVERS = {  # HGLN_OBS, HGLT_OBS (deg), DSUN_OBS (m), OBSRVTRY
    "aia": (0.0, 3.0, 1.496e11, "SDO"),
    "euvi_a": (105.0, -2.0, 1.49e11, "STEREO_A"),
}


def celestial_header(n: int, time: str, instrument: str = "aia",
                     mask_radius: float = MASK_RADIUS) -> fits.Header:
    lon, lat, dsun, obs = OBSERVERS[instrument]
    rsun_px = n * RSUN_PX / IMAGE_SIZE
    h = fits.Header()
    for i in (1, 2):
        h[f"CTYPE{i}"] = "HPLN-TAN" if i == 1 else "HPLT-TAN"
        h[f"CUNIT{i}"] = "arcsec"
        h[f"CDELT{i}"] = RSUN_OBS / rsun_px
        h[f"CRPIX{i}"] = (n + 1) / 2
        h[f"CRVAL{i}"] = 0.0
    h["PC1_1"], h["PC1_2"], h["PC2_1"], h["PC2_2"], h["CROTA2"] = 1.0, 0.0, 0.0, 1.0, 0.0
    h["DATE-OBS"] = time
    set_mjd_keywords(h)  # as align writes it
    h["HGLN_OBS"], h["HGLT_OBS"], h["DSUN_OBS"] = lon, lat, dsun
    h["RSUN_OBS"], h["RSUN_REF"] = RSUN_OBS, 6.957e8
    h["OBSRVTRY"] = obs
    h["TELESCOP"] = "SDO/AIA" if instrument == "aia" else "STEREO"
    h["INSTRUME"] = "AIA" if instrument == "aia" else "SECCHI"
    if instrument != "aia":
        h["DETECTOR"] = "EUVI"
    conventions.write_geometry(h, rsun_px, mask_radius)
    return h


def stack_header(n: int, time: str, instrument: str = "aia", mask_radius: float = MASK_RADIUS,
                 euv_median: float = 100.0, euv_clip=(1.0, 200.0)) -> fits.Header:
    h = celestial_header(n, time, instrument, mask_radius)
    h["CTYPE3"], h["CRPIX3"], h["CRVAL3"], h["CDELT3"] = "CHANNEL", 1.0, 1.0, 1.0
    conventions.write_euv_normalization(h, 50.0, euv_median, euv_clip)
    del h["NORMMED"]  # a stack keeps each channel's as NORMMED1..3
    conventions.write_channels(h, (304, 193, 171) if instrument == "aia" else (304, 195, 171))
    h["BUNIT"] = ""
    return h


def target_header(n: int, time: str, hmi_clip: float = 3000.0,
                  mask_radius: float = MASK_RADIUS) -> fits.Header:
    """A normalized HMI target's header (SDO's observer, HMI's identity, NORMCLIP)."""
    h = celestial_header(n, time, "aia", mask_radius)
    h["TELESCOP"], h["INSTRUME"], h["CONTENT"], h["BUNIT"] = "SDO/HMI", "HMI_FRONT2", "MAGNETOGRAM", ""
    conventions.write_hmi_normalization(h, hmi_clip)
    return h


def bipole_field(n: int, rng: np.random.Generator, n_regions: int = 4) -> np.ndarray:
    """LOS field (G): Gaussian bipoles of +-(800..2500) G plus weak noise, zero off the disk."""
    y, x = (np.indices((n, n)) - (n - 1) / 2) / (n * RSUN_PX / IMAGE_SIZE)
    field = 20.0 * rng.standard_normal((n, n))
    for _ in range(n_regions):
        r, phi = 0.7 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        cx, cy = r * np.cos(phi), r * np.sin(phi)
        sep, width = rng.uniform(0.08, 0.16), rng.uniform(0.03, 0.06)
        amp = rng.uniform(800, 2500) * np.sign(cy + 1e-9)  # sign follows the hemisphere
        for dx, s in ((-sep / 2, 1.0), (sep / 2, -1.0)):
            field += s * amp * np.exp(-((x - cx - dx) ** 2 + (y - cy) ** 2) / (2 * width ** 2))
    field[~disk_mask(n, n * RSUN_PX / IMAGE_SIZE, MASK_RADIUS)] = 0.0
    return field


def euv_channels(field: np.ndarray) -> np.ndarray:
    """Three [-1, 1] channels that follow the field: |B| brightness, smoothed |B|, signed B."""
    n = field.shape[0]
    disk = disk_mask(n, n * RSUN_PX / IMAGE_SIZE, MASK_RADIUS)
    a = np.tanh(np.abs(field) / 1000.0)
    from scipy.ndimage import gaussian_filter
    b = np.tanh(gaussian_filter(np.abs(field), 2.0) / 500.0)
    c = 0.5 * np.tanh(field / 1500.0)
    stack = np.stack([2 * a - 0.9, 2 * b - 0.9, c])
    stack[:, ~disk] = -1.0
    return np.clip(stack, -1, 1).astype(np.float32)


def write_pair(directory: Path, index: int, n: int = 64, seed: int = 0,
               instrument: str = "aia", hmi_clip: float = 3000.0,
               mask_radius: float = MASK_RADIUS) -> tuple[Path, Path, np.ndarray]:
    """Write stack_XXX.fits and target_XXX.fits; returns their paths and the field in Gauss
    (clipped at +-``hmi_clip``, the targets' NORMCLIP)."""
    rng = np.random.default_rng([seed, index])
    field = bipole_field(n, rng)
    time = f"2011-01-{1 + index // 2:02d}T{12 * (index % 2):02d}:00:00.000"
    directory = Path(directory)
    stack = write_fits(directory / f"stack_{index:03d}.fits", euv_channels(field),
                       stack_header(n, time, instrument, mask_radius))
    target = write_fits(directory / f"target_{index:03d}.fits", normalize_hmi(field, hmi_clip),
                        target_header(n, time, hmi_clip, mask_radius))
    return stack, target, np.clip(field, -hmi_clip, hmi_clip)


def write_manifest(directory: Path, n_train: int, n_eval: int = 0, n: int = 64,
                   seed: int = 0, hmi_clip: float = 3000.0,
                   mask_radius: float = MASK_RADIUS) -> Path:
    """Pairs + manifest.csv with relative paths (plus one dropped row, which must be ignored)."""
    directory = Path(directory)
    rows = []
    for i in range(n_train + n_eval):
        stack, target, _ = write_pair(directory / "pairs", i, n, seed, hmi_clip=hmi_clip,
                                      mask_radius=mask_radius)
        time = fits.getheader(stack)["DATE-OBS"]
        rows.append({"time": time, "split": "train" if i < n_train else "eval",
                     "input": str(stack.relative_to(directory)),
                     "target": str(target.relative_to(directory)),
                     "status": "ok", "reason": "", "detail": ""})
    rows.append({"time": "2012-01-01T00:00:00", "split": "", "input": "", "target": "",
                 "status": "dropped", "reason": "quality_flag", "detail": "QUALITY != 0"})
    path = directory / "manifest.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def synthetic_pipeline_frames(directory: Path, sun, tables, instrument: str, time, size: int = 64,
                              raw_size: int = 128, seed: int = 0):
    """Normalized frames of one time from the synthetic Sun through calibrate -> align ->
    normalize (library calls, as the workflow's rules run them): [(data, header)] per channel."""
    from farside_gan.core.fitsio import read_fits
    from farside_gan.core.instruments import CHANNELS
    from farside_gan.prepare.align import align_frame
    from farside_gan.prepare.calibrate import calibrate_frame
    from farside_gan.prepare.normalize import normalize_frame
    from farside_gan.synthetic import write_observation

    frames = []
    for ch in CHANNELS[instrument]:
        raw = write_observation(Path(directory) / "raw" / f"{instrument}_{ch}_{time:%Y%m%d_%H%M}.fits",
                                sun, instrument, ch, time, size=raw_size, seed=seed)
        data, header = calibrate_frame(*read_fits(raw), tables=tables, path=raw)
        data, header = align_frame(data, header, size=size, rsun_px=size * RSUN_PX / IMAGE_SIZE,
                                   path=raw)
        frames.append(normalize_frame(data, header, path=raw))
    return frames


def write_synthetic_manifest(directory: Path, train_times, eval_times, size: int = 64,
                             raw_size: int = 128, seed: int = 0, farside_times=(),
                             grid_deg: float = 0.2) -> Path:
    """Real pipeline pairs from the synthetic Sun (AIA stacks + normalized HMI targets) and a
    manifest written by ``farside_gan.prepare.manifest``; EUVI-A stacks of ``farside_times`` go to
    ``directory/farside/``. ``grid_deg``: the Sun's heliographic grid (0.5 is ~6x faster)"""
    from farside_gan.prepare.calibrate import load_calibration_tables, write_demo_calibration_tables
    from farside_gan.prepare.stack import stack_frames
    from farside_gan.prepare.manifest import write_manifest as write_dataset_manifest
    from farside_gan.synthetic import SyntheticSun

    directory = Path(directory)
    sun = SyntheticSun(seed=seed, grid_deg=grid_deg)
    tables = load_calibration_tables(write_demo_calibration_tables(directory / "cal")[0].parent)
    rows = []
    for split, times in (("train", train_times), ("eval", eval_times)):
        for t in times:
            euv = synthetic_pipeline_frames(directory, sun, tables, "aia", t, size, raw_size, seed)
            (hmi,) = synthetic_pipeline_frames(directory, sun, tables, "hmi", t, size, raw_size,
                                               seed)
            stack = write_fits(directory / "stacks" / f"{t:%Y%m%d_%H%M%S}.fits", *stack_frames(euv))
            target = write_fits(directory / "targets" / f"{t:%Y%m%d_%H%M%S}.fits", *hmi)
            rows.append({"time": f"{t:%Y-%m-%dT%H:%M:%S}", "split": split, "input": str(stack),
                         "target": str(target), "status": "ok", "reason": "", "detail": ""})
    for t in farside_times:
        euv = synthetic_pipeline_frames(directory, sun, tables, "euvi_a", t, size, raw_size, seed)
        write_fits(directory / "farside" / f"{t:%Y%m%d_%H%M%S}.fits", *stack_frames(euv))
    return write_dataset_manifest(directory / "manifest.csv", rows)


def other_sample_manifest(manifest: Path) -> Path:
    """A copy of ``manifest`` whose first training pair is its first evaluation pair (and the
    other way round): a run on it sees other data; next to it, ``other_sample.csv``."""
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    first_train = next(i for i, r in enumerate(rows) if r["split"] == "train")
    first_eval = next(i for i, r in enumerate(rows) if r["split"] == "eval")
    rows[first_train], rows[first_eval] = ({**rows[first_eval], "split": "train"},
                                           {**rows[first_train], "split": "eval"})
    path = Path(manifest).with_name("other_sample.csv")
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# How far a data-parallel float32 run may end from one process with both batches, as the
# relative difference of the generators' outputs after 4 steps of the tiny model. Measured on
# the CPU for seeds 0-7 with 1 and 2 threads per rank (2026-12-07): most runs differ by 6e-7 to
# 9e-7, but 3 of the 16 by 2.0e-4 to 3.4e-4, on one machine and not on another. The two layouts
# sum a gradient in other orders, and Adam divides a gradient near its eps (1e-8) by its own
# size, so there a rounding difference changes a weight's step by a visible fraction. The bound
# is 6x the largest of those; one process trained with one of its 4 samples replaced
# (other_sample_manifest) differs by 3.4e-2 to 1.0e-1, 17x to 50x above it. Exact equality is
# checked in float64 (tests/unit/training/test_distributed.py), where rounding cannot reach
# Adam's eps.
DATA_PARALLEL_FLOAT32_BOUND = 2e-3


def assert_same_generator(ddp: dict, single: dict, steps: int, other_data: dict) -> None:
    """Checkpoints (``load_checkpoint``) of a data-parallel run and of one process given all its
    ranks' batches: the same generator within ``DATA_PARALLEL_FLOAT32_BOUND`` after ``steps``
    steps each, while ``other_data`` (one process, one sample replaced: see
    :func:`other_sample_manifest`) fails that comparison, and training moved the generator far
    more."""
    import torch

    from farside_gan.model.networks import init_weights
    from farside_gan.training.trainer import TrainConfig, build_networks

    assert ddp["step"] == single["step"] == other_data["step"] == steps
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5)) * 2 - 1

    def output(ckpt: dict, untrained: bool = False) -> torch.Tensor:
        torch.manual_seed(ckpt["config"]["seed"])
        G, _ = build_networks(TrainConfig(**ckpt["config"]))
        if untrained:
            init_weights(G, ckpt["config"]["init_std"])
        else:
            G.load_state_dict(ckpt["G"])
        with torch.no_grad():
            return G.eval()(x)

    def relative(a: torch.Tensor, b: torch.Tensor) -> float:
        return ((a - b).norm() / b.norm()).item()

    reference = output(single)
    rel = relative(output(ddp), reference)
    rel_other = relative(output(other_data), reference)
    moved = relative(output(single, untrained=True), reference)
    print(f"data-parallel vs single rel diff {rel:.2e}; other data {rel_other:.2e}; "
          f"training moved the output by {moved:.2e}")
    assert rel < DATA_PARALLEL_FLOAT32_BOUND, rel
    assert rel_other > DATA_PARALLEL_FLOAT32_BOUND, rel_other  # the negative control
    assert moved > 10 * DATA_PARALLEL_FLOAT32_BOUND, moved
