"""PyTorch datasets of (EUV stack, normalized HMI target) pairs read from FITS files.

Two sources: the dataset manifest CSV (``time, split, input, target, status, reason, detail``;
rows with ``status == 'ok'`` and the wanted split), or a plain directory holding ``input/`` and
``target/`` subdirectories with files of the same names. Items are dicts with ``input``
(C, N, N), ``target`` (1, N, N), float32 in [-1, 1], and ``index``.

Augmentation (optional, as in the reference implementation's options) rotates and translates
input and target together; optionally it also flips them north-south, negating the target, which
keeps the physics (:func:`flip_north_south`). Its random numbers come from (seed, epoch, index),
so an epoch is reproducible in any worker process and after a resume.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import MappedImages, read_fits

MANIFEST_COLUMNS = ("time", "split", "input", "target", "status", "reason", "detail")
FITS_SUFFIXES = (".fits", ".fts", ".fit", ".fits.gz")


def read_stack(path: str | os.PathLike, in_channels: int | None = None):
    """Read an EUV stack: (C, N, N) float32 in [-1, 1] and its header; errors name the file."""
    data, header = read_fits(path)
    _check_stack_shape(path, data.shape, in_channels)
    return _checked_values(path, data), header


def read_target(path: str | os.PathLike):
    """Read a normalized HMI target: (N, N) float32 in [-1, 1] and its header."""
    data, header = read_fits(path)
    _check_target_shape(path, data.shape)
    return _checked_values(path, data), header


def _check_stack_shape(path, shape: tuple, in_channels: int | None) -> None:
    if len(shape) != 3 or shape[1] != shape[2]:
        raise InputDataError(path, f"expected a (channels, N, N) stack, got shape {shape}",
                             reason="bad_shape")
    if in_channels is not None and shape[0] != in_channels:
        raise InputDataError(path, f"stack has {shape[0]} channels, the model expects "
                             f"{in_channels}", reason="wrong_channel")


def _check_target_shape(path, shape: tuple) -> None:
    if len(shape) != 2 or shape[0] != shape[1]:
        raise InputDataError(path, f"expected a square (N, N) target, got shape {shape}",
                             reason="bad_shape")


def _check_pair_shapes(input_path, target_path, stack_shape: tuple, target_shape: tuple) -> None:
    if tuple(target_shape) != tuple(stack_shape[1:]):
        raise InputDataError(target_path, f"target shape {tuple(target_shape)} differs from its "
                             f"input {input_path} ({tuple(stack_shape[1:])})", reason="bad_shape")


def _checked_values(path, data: np.ndarray) -> np.ndarray:
    data = np.asarray(data, dtype=np.float32)
    # min and max propagate NaN and reach +-inf: two passes, no temporaries (the loader's
    # per-sample cost; 1024 px stacks are 12 MB).
    lo, hi = float(data.min()), float(data.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputDataError(path, "contains NaN or infinite values; expected normalized data",
                             reason="mostly_nan")
    if max(-lo, hi) > 1.0 + 1e-4:
        raise InputDataError(path, f"values reach {max(-lo, hi):.3g}; normalized data must "
                             "lie in [-1, 1]", reason="not_normalized")
    return data


def _copy_checked(path, out: np.ndarray, data: np.ndarray) -> None:
    """``out[...] = data`` as float32 (one pass that also swaps FITS' byte order), then the
    value check of :func:`_checked_values` on ``out``."""
    np.copyto(out, data, casting="unsafe")
    _checked_values(path, out)


@dataclass(frozen=True)
class Augmentation:
    """Random rotation in [-rotation_deg, rotation_deg] and translation in [-translate_px, ...]
    of input and target together, then (``ns_flip``) with probability 1/2 the north-south flip
    of both with the target's sign flipped (:func:`flip_north_south`).

    The draws come from the generator :meth:`apply` is given, in this order: rotation angle
    and the two shifts (when a rotation or translation is asked for), then the flip's coin.
    """
    rotation_deg: float = 0.0
    translate_px: float = 0.0
    ns_flip: bool = False

    @property
    def active(self) -> bool:
        return self.rigid or self.ns_flip

    @property
    def rigid(self) -> bool:
        """Whether a rotation or translation is drawn (the flip alone moves no pixel off-grid)."""
        return self.rotation_deg > 0 or self.translate_px > 0

    def apply(self, image: torch.Tensor, target: torch.Tensor, generator: torch.Generator):
        """Transform both (C, N, N) tensors: the rigid transform, then the flip if drawn."""
        if self.rigid:
            image, target = self._rigid(image, target, generator)
        if self.flips(generator):
            image, target = flip_north_south(image, target)
        return image, target

    def flips(self, generator: torch.Generator) -> bool:
        """The flip's coin (one draw when ``ns_flip``, none otherwise)."""
        return self.ns_flip and bool(torch.rand(1, generator=generator, dtype=torch.float64) < 0.5)

    def _rigid(self, image: torch.Tensor, target: torch.Tensor, generator: torch.Generator):
        """One random rigid transform of both (bilinear, border fill)."""
        angle, tx, ty = ((torch.rand(3, generator=generator, dtype=torch.float64) * 2 - 1)
                         * torch.tensor([math.radians(self.rotation_deg), self.translate_px,
                                         self.translate_px], dtype=torch.float64)).tolist()
        n = image.shape[-1]
        cos, sin = math.cos(angle), math.sin(angle)
        # affine_grid works in normalized coordinates: a shift of t px is 2 t / N.
        theta = torch.tensor([[[cos, -sin, 2 * tx / n], [sin, cos, 2 * ty / n]]],
                             dtype=torch.float32)
        both = torch.cat([image, target], dim=0)[None]
        grid = F.affine_grid(theta, list(both.shape), align_corners=False)
        out = F.grid_sample(both, grid, mode="bilinear", padding_mode="border",
                            align_corners=False)[0]
        return out[:image.shape[0]], out[image.shape[0]:]


def flip_north_south(image: torch.Tensor, target: torch.Tensor):
    """The pair of a Sun with its hemispheres swapped: rows reversed (the aligned frames have
    north up, solar y along the rows, and the disk centred, so the disk maps onto itself) and
    the target's sign flipped. Returns new tensors.

    This is a magnetogram the Sun could show in the same cycle: Hale's law gives the two
    hemispheres' leading polarities opposite signs, so the mirrored northern regions, negated,
    have the southern leading sign, and the other way round. Joy's law (leading polarity
    nearer the equator) holds because mirroring keeps each polarity's distance from the
    equator and its east-west place. The polar fields, of opposite signs at the two poles,
    swap and are negated, so each pole keeps its sign. The EUV images are unsigned and change
    only by the mirroring (the observer's latitude B0 becomes -B0, which the Sun also shows).
    An east-west flip would not keep the physics: it puts the following polarity of each
    region ahead in the direction of rotation, swapping leading and following polarities,
    and taking each region's compact leading spot behind its dispersed following plage:
    every region would break Hale's law (with the sign flipped too, Joy's law and the
    polar fields' sign against the cycle would break instead).
    """
    return image.flip(-2), target.flip(-2).neg()


class PairedFitsDataset(Dataset):
    """(stack, target) FITS pairs; see the module docstring for the item format."""

    def __init__(self, pairs: list[tuple[Path, Path]], in_channels: int = 3,
                 augmentation: Augmentation | None = None, seed: int = 0,
                 times: list[str] | None = None):
        if not pairs:
            raise ValueError("no (input, target) pairs to train on")
        self.pairs = [(Path(i), Path(t)) for i, t in pairs]
        self.times = times
        self.in_channels = in_channels
        self.augmentation = augmentation or Augmentation()
        self.seed = seed
        self.epoch = 0
        self._images = MappedImages()  # read_into parses each file's header once

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation random stream of an epoch (call before iterating)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        input_path, target_path = self.pairs[index]
        stack, _ = read_stack(input_path, self.in_channels)
        target, _ = read_target(target_path)
        _check_pair_shapes(input_path, target_path, stack.shape, target.shape)
        image, label = torch.from_numpy(stack), torch.from_numpy(target)[None]
        if self.augmentation.active:
            image, label = self.augmentation.apply(image, label, self._random(index))
        return {"input": image, "target": label, "index": index}

    def _random(self, index: int) -> torch.Generator:
        """The augmentation's random stream of a sample in this epoch: a function of (seed,
        epoch, index) only, so any worker and a resumed run draw the same."""
        state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0]
        return torch.Generator().manual_seed(int(state))

    @property
    def reads_into(self) -> bool:
        """Whether :meth:`read_into` gives the items (no rotation or translation to apply; the
        north-south flip it applies itself)."""
        return not self.augmentation.rigid

    def read_into(self, index: int, outputs) -> None:
        """Read pair ``index`` straight into caller-owned float32 arrays (the batch's rows).

        ``outputs(stack_shape)`` returns ``(input_out, target_out)``, (C, N, N) and (1, N, N)
        float32; it is called once the stack's shape is checked. After a file's first, fully
        checked read its data is memory-mapped (:class:`~farside_gan.core.fitsio.MappedImages`) and
        copied once (swapping FITS' byte order on the way), then checked in place, with
        exactly the checks, order and errors of ``self[index]``; the arrays then hold
        ``self[index]["input"]`` and ``["target"]``, flipped north-south in place when the
        sample's coin says so. Only without rotation and translation (:attr:`reads_into`).
        """
        if not self.reads_into:
            raise ValueError("read_into cannot rotate or translate; use dataset[index]")
        input_path, target_path = self.pairs[index]
        with self._images.open(input_path) as stack:
            shape = stack.shape
            _check_stack_shape(input_path, shape, self.in_channels)
            input_out, target_out = outputs(shape)
            if tuple(input_out.shape) != shape:
                raise InputDataError(input_path, f"stack shape {shape} differs from the others "
                                     f"of its batch ({tuple(input_out.shape)})", reason="bad_shape")
            _copy_checked(input_path, input_out, stack)
        with self._images.open(target_path) as target:
            _check_target_shape(target_path, target.shape)
            if target.shape != shape[1:]:
                _checked_values(target_path, target)  # self[index] checks the values first
                _check_pair_shapes(input_path, target_path, shape, target.shape)
            _copy_checked(target_path, target_out[0], target)
        if self.augmentation.flips(self._random(index)):
            image, label = torch.from_numpy(input_out), torch.from_numpy(target_out)
            flipped = flip_north_south(image, label)  # new tensors: no overlapping copy
            image.copy_(flipped[0])
            label.copy_(flipped[1])

    @classmethod
    def from_manifest(cls, manifest: str | os.PathLike, split: str = "train", **kwargs):
        pairs, times = manifest_pairs(manifest, split)
        return cls(pairs, times=times, **kwargs)

    @classmethod
    def from_directory(cls, directory: str | os.PathLike, **kwargs):
        return cls(directory_pairs(directory), **kwargs)


def _resolve(path: str, manifest: Path) -> Path:
    """Manifest paths: absolute, or relative to the working directory, else to the manifest."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return manifest.parent / p


def manifest_pairs(manifest: str | os.PathLike, split: str = "train"):
    """(input, target) paths and times of the ``ok`` rows of ``split``, in manifest order."""
    manifest = Path(manifest)
    try:
        with open(manifest, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("time", "split", "input", "target", "status")
                       if c not in (reader.fieldnames or [])]
            if missing:
                raise InputDataError(manifest, f"manifest lacks columns {missing}; expected "
                                     f"{list(MANIFEST_COLUMNS)}", reason="bad_manifest")
            rows = [r for r in reader if r["status"] == "ok" and r["split"] == split]
    except OSError as exc:
        raise InputDataError(manifest, f"cannot read manifest ({exc})", reason="missing_file") from exc
    pairs = [(_resolve(r["input"], manifest), _resolve(r["target"], manifest)) for r in rows]
    return pairs, [r["time"] for r in rows]


def directory_pairs(directory: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Pairs ``DIR/input/NAME`` + ``DIR/target/NAME``; an input without its target is an error."""
    directory = Path(directory)
    inputs, targets = directory / "input", directory / "target"
    for d in (inputs, targets):
        if not d.is_dir():
            raise InputDataError(d, "missing directory; a pair directory holds input/ and target/",
                                 reason="missing_file")
    names = sorted(p.name for p in inputs.iterdir() if p.name.lower().endswith(FITS_SUFFIXES))
    if not names:
        raise InputDataError(inputs, "no FITS files", reason="no_data")
    lonely = [n for n in names if not (targets / n).exists()]
    if lonely:
        raise InputDataError(targets, f"no target for inputs {lonely[:5]}", reason="no_partner")
    return [(inputs / n, targets / n) for n in names]
