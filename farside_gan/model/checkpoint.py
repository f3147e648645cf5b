"""Checkpoint files: the networks a configuration builds, and loading a checkpoint or
``generator.pt`` with errors that name the file.

A checkpoint is a ``torch.save`` dict with ``format`` (:data:`CHECKPOINT_FORMAT` for training
state, :data:`GENERATOR_FORMAT` for the generator alone), ``G``, ``config`` (a
:class:`~farside_gan.config.training.TrainConfig` as a dict) and ``conventions`` (the frame
conventions of the data it was trained on, :mod:`farside_gan.core.conventions`); a training
checkpoint also holds ``D``, the optimizers, step, epoch, RNG states and ``run``, and with
``ema_decay`` > 0 ``G_ema``, the moving average of ``G``'s weights: the run's generator, which
``generator.pt`` holds as its ``G`` and :func:`load_generator` loads from a training checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from farside_gan.config.training import TrainConfig
from farside_gan.core.conventions import Conventions
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import atomic_output
from farside_gan.model.networks import GlobalGenerator, MultiscaleDiscriminator

CHECKPOINT_FORMAT = "farside-gan-checkpoint"
GENERATOR_FORMAT = "farside-gan-generator"


def build_networks(config: TrainConfig) -> tuple[GlobalGenerator, MultiscaleDiscriminator]:
    G = GlobalGenerator(config.in_channels, config.out_channels, config.ngf, config.n_downsample,
                        config.n_residual, config.norm, config.padding)
    D = MultiscaleDiscriminator(config.in_channels + config.out_channels, config.ndf, config.n_D,
                                config.n_layers_D, config.norm)
    return G, D


def save_checkpoint(obj: dict, path: Path) -> None:
    """``torch.save`` atomically (nothing half-written survives)."""
    with atomic_output(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a training checkpoint or generator file; corrupt/foreign files raise InputDataError."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, "checkpoint file does not exist", reason="missing_file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/garbage files
        raise InputDataError(path, f"corrupt or unreadable checkpoint ({type(exc).__name__}: "
                             f"{str(exc)[:200]})", reason="corrupt_checkpoint") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") not in (CHECKPOINT_FORMAT, GENERATOR_FORMAT):
        raise InputDataError(path, "not a farside-gan checkpoint (no 'format' marker)",
                             reason="corrupt_checkpoint")
    for key in ("G", "config"):
        if key not in ckpt:
            raise InputDataError(path, f"checkpoint lacks {key!r}", reason="corrupt_checkpoint")
    return ckpt


def check_model_config(path, saved: dict, config: TrainConfig) -> None:
    """Raise InputDataError naming every model setting where the checkpoint and config differ."""
    diffs = [f"{k}: checkpoint {saved.get(k)!r} != config {getattr(config, k)!r}"
             for k in TrainConfig.MODEL_FIELDS if saved.get(k) != getattr(config, k)]
    if diffs:
        raise InputDataError(path, "checkpoint does not match the model configuration ("
                             + "; ".join(diffs) + ")", reason="checkpoint_mismatch")


def load_state(path, module: torch.nn.Module, state: dict, what: str) -> None:
    try:
        module.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise InputDataError(path, f"{what} weights do not fit the network ({str(exc)[:300]})",
                             reason="checkpoint_mismatch") from exc


def checkpoint_conventions(path, ckpt: dict) -> Conventions:
    """The frame conventions a checkpoint's model was trained on."""
    values = ckpt.get("conventions")
    if not values:
        raise InputDataError(path, "checkpoint records no frame conventions (written before "
                             "farside-gan recorded them): retrain it", reason="corrupt_checkpoint")
    try:
        found = Conventions.from_dict(values)
    except (TypeError, ValueError) as exc:
        raise InputDataError(path, f"checkpoint conventions unusable ({exc})",
                             reason="corrupt_checkpoint") from exc
    missing = [n for n in ("hmi_clip", "euv_median", "euv_clip", "channels")
               if getattr(found, n) is None]
    if missing:
        raise InputDataError(path, f"checkpoint conventions lack {', '.join(missing)}",
                             reason="corrupt_checkpoint")
    return found


def load_generator(checkpoint: str | os.PathLike, device: str | torch.device = "cpu"):
    """(generator in eval mode on ``device``, its TrainConfig, its data's Conventions) of a
    training checkpoint (its ``G_ema`` when it has one) or ``generator.pt``."""
    return generator_of(load_checkpoint(checkpoint, map_location="cpu"), checkpoint, device)


def generator_of(ckpt: dict, checkpoint, device: str | torch.device = "cpu"):
    """:func:`load_generator` of a checkpoint dict already loaded from the file ``checkpoint``."""
    try:
        config = TrainConfig.from_dict(ckpt["config"], source=str(checkpoint))
    except (TypeError, ValueError) as exc:
        raise InputDataError(checkpoint, f"checkpoint config unusable ({exc})",
                             reason="corrupt_checkpoint") from exc
    check_model_config(checkpoint, ckpt["config"], config)
    conventions = checkpoint_conventions(checkpoint, ckpt)
    G, _ = build_networks(config)
    load_state(checkpoint, G, ckpt.get("G_ema", ckpt["G"]), "generator")
    return G.to(device).eval(), config, conventions
