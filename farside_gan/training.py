"""Pix2PixHD training: one loop, one per-step function, atomic checkpoints, exact resume.

Layout of an output directory::

    checkpoints/latest.pt          every ``checkpoint_every`` steps and at the end
    checkpoints/epoch_NNNN.pt      every ``keep_every_epochs`` epochs
    generator.pt                   the final generator (what ``predict`` needs)
    losses.csv                     step, epoch, lr, loss_D, loss_G, loss_G_gan, loss_G_fm, seconds
    validation.csv                 epoch, step, n, cc, cc_binned, rmse (Gauss) on the eval split
    previews/step_NNNNNNN.png      input channels / real / generated

Speed work (bf16 is here; channels-last, fused Adam, torch.compile, DDP via
``farside_gan.distributed``) belongs in :meth:`Trainer.__init__` (model/optimizer set-up) and
:meth:`Trainer.train_step` (the step); checkpoints always store the unwrapped modules.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from farside_gan import __version__
from farside_gan import distributed as dist
from farside_gan.errors import InputDataError, OutputError
from farside_gan.fitsio import atomic_output
from farside_gan.model.accel import use_gemm_convs
from farside_gan.model.data import (Augmentation, PairedFitsDataset, disk_radius_px,
                                    manifest_pairs)
from farside_gan.model.losses import discriminator_loss, generator_loss
from farside_gan.model.networks import GlobalGenerator, MultiscaleDiscriminator, init_weights

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "farside-gan-checkpoint"
GENERATOR_FORMAT = "farside-gan-generator"
LOSS_COLUMNS = ("step", "epoch", "lr", "loss_D", "loss_G", "loss_G_gan", "loss_G_fm", "seconds")
VALIDATION_COLUMNS = ("epoch", "step", "n", "cc", "cc_binned", "rmse")


@dataclass
class TrainConfig:
    """Model and training settings; YAML sections ``model:`` and ``training:`` (flat keys)."""

    # --- model: (a checkpoint must match these to be loaded)
    in_channels: int = 3
    out_channels: int = 1
    ngf: int = 32
    ndf: int = 64
    n_downsample: int = 4
    n_residual: int = 9
    n_D: int = 2
    n_layers_D: int = 3
    norm: str = "instance"
    padding: str = "reflection"
    # --- training:
    epochs: int = 150
    epoch_decay: int = 100          # lr constant for this many epochs, then linear to zero
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_fm: float = 10.0
    init_std: float = 0.02
    seed: int = 0
    augment_rotation_deg: float = 0.0
    augment_translate_px: float = 0.0
    num_workers: int = 0
    num_threads: int = 0            # torch CPU threads; 0 = torch's default
    mixed_precision: str = "auto"   # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    log_every: int = 10             # steps between losses.csv rows
    preview_every: int = 500        # steps between preview PNGs; 0 = none
    checkpoint_every: int = 500     # steps between latest.pt updates (and at the last step)
    keep_every_epochs: int = 10     # keep checkpoints/epoch_NNNN.pt every this many epochs; 0 = none
    val_every_epochs: int = 1       # 0 = no validation
    val_max_samples: int = 16
    bin_factor: int = 8
    hmi_clip: float = 3000.0        # Gauss of a normalized target value of 1
    max_steps: int = 0              # stop after this many steps in total; 0 = run all epochs
    progress: bool = True
    # --- speed: these act on CUDA only (and single_d_pass also under DDP); the CPU
    # single-process path stays plain fp32 and bit-reproducible. See benchmarks/README.md.
    channels_last: bool = False     # NHWC activations and weights
    fused_adam: bool = True         # Adam as one fused kernel per step
    compile: bool = True            # torch.compile G and D (compiles for a minute or two, once)
    cudnn_benchmark: bool = True    # cuDNN times its algorithms for each layer shape
    single_d_pass: bool = True      # D sees fake and real pairs as one batch; D frozen in G's loss
    prefetch_factor: int = 4        # batches each loader worker keeps ready (num_workers > 0)
    gemm_convs: bool = True         # with compile: few-channel convs (G's first/last, D's first/score) as GEMMs
    loader: str = "threads"         # threads: num_workers reader threads | workers: DataLoader processes

    MODEL_FIELDS = ("in_channels", "out_channels", "ngf", "ndf", "n_downsample", "n_residual",
                    "n_D", "n_layers_D", "norm", "padding")

    def __post_init__(self):
        if self.epoch_decay > self.epochs:
            raise ValueError(f"epoch_decay ({self.epoch_decay}) exceeds epochs ({self.epochs})")
        if self.loader not in ("workers", "threads"):
            raise ValueError(f"loader must be workers or threads, not {self.loader!r}")
        if self.mixed_precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"mixed_precision must be auto, bf16 or fp32, not {self.mixed_precision!r}")

    @property
    def model(self) -> dict:
        return {k: getattr(self, k) for k in self.MODEL_FIELDS}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            log.warning("%s: ignoring unknown training/model keys %s", source, unknown)
        return cls(**{k: _convert(cls, k, v) for k, v in values.items() if k in known})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "TrainConfig":
        """Merge the ``model:`` and ``training:`` sections of a workflow config file."""
        import yaml
        try:
            with open(path) as fh:
                doc = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputDataError(path, f"cannot read config ({exc})", reason="bad_config") from exc
        values = {**(doc.get("model") or {}), **(doc.get("training") or {})}
        try:
            return cls.from_dict(values, source=str(path))
        except (TypeError, ValueError) as exc:
            raise InputDataError(path, f"bad model/training setting: {exc}", reason="bad_config") from exc

    def with_overrides(self, assignments: list[str]) -> "TrainConfig":
        """Apply ``key=value`` strings (the CLI's ``--set``); unknown keys are an error."""
        values = self.to_dict()
        for item in assignments:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in values:
                raise ValueError(f"--set {item!r}: expected key=value with key one of "
                                 f"{sorted(values)}")
            values[key] = _convert(type(self), key, value.strip())
        return type(self)(**values)


def _convert(cls, key: str, value):
    """Coerce ``value`` to the type of the field's default (strings from the CLI or YAML)."""
    default = next(f.default for f in dataclasses.fields(cls) if f.name == key)
    kind = type(default)
    if kind is bool:
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{key}: expected true/false, got {value!r}")
            return value.lower() in ("true", "1", "yes")
        return bool(value)
    if kind is int:
        as_float = float(value)
        if as_float != int(as_float):
            raise ValueError(f"{key}: expected an integer, got {value!r}")
        return int(as_float)
    return kind(value)


def lr_factor(epoch: int, epochs: int, epoch_decay: int) -> float:
    """1 for the first ``epoch_decay`` epochs, then linearly down (reaching 0 after the last)."""
    if epoch < epoch_decay:
        return 1.0
    return max(0.0, 1.0 - (epoch - epoch_decay + 1) / (epochs - epoch_decay + 1))


def build_networks(config: TrainConfig) -> tuple[GlobalGenerator, MultiscaleDiscriminator]:
    G = GlobalGenerator(config.in_channels, config.out_channels, config.ngf, config.n_downsample,
                        config.n_residual, config.norm, config.padding)
    D = MultiscaleDiscriminator(config.in_channels + config.out_channels, config.ndf, config.n_D,
                                config.n_layers_D, config.norm)
    return G, D


# ---------------------------------------------------------------- checkpoints

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


def _save(obj: dict, path: Path) -> None:
    with atomic_output(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


# ---------------------------------------------------------------- trainer

class Trainer:
    """Holds networks, optimizers, data and output paths; :meth:`fit` runs (or resumes) training."""

    def __init__(self, config: TrainConfig, train_set: PairedFitsDataset, out_dir: str | os.PathLike,
                 val_set: PairedFitsDataset | None = None, device: str = "auto"):
        self.config = config
        self.train_set, self.val_set = train_set, val_set
        self.out_dir = Path(out_dir)
        # Under torchrun: one process per GPU (or gloo CPU worker); else a single process.
        self.dist = dist.init_distributed(device)
        self.device = self.dist.device
        cuda = self.device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = config.cudnn_benchmark
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        precision = config.mixed_precision
        self.autocast_dtype = (torch.bfloat16 if precision == "bf16" or
                               (precision == "auto" and self.device.type == "cuda") else None)

        torch.manual_seed(config.seed)
        self.G, self.D = build_networks(config)
        init_weights(self.G, config.init_std)
        init_weights(self.D, config.init_std)
        self.memory_format = (torch.channels_last if cuda and config.channels_last
                              else torch.contiguous_format)
        self.G.to(self.device, memory_format=self.memory_format)
        self.D.to(self.device, memory_format=self.memory_format)
        if cuda and config.compile and config.gemm_convs:  # eager, their backward is slower
            use_gemm_convs(self.G)
            use_gemm_convs(self.D)
        betas = (config.beta1, config.beta2)
        fused = {"fused": True} if cuda and config.fused_adam else {}
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas, **fused)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas, **fused)
        # What runs: DDP- and/or compile-wrapped views of G and D; self.G / self.D stay the bare
        # modules that checkpoints store. DDP allows one D forward per backward, hence the
        # single D pass (and a bare, frozen D inside G's loss) whenever it is on.
        self.single_d_pass = self.dist.enabled or (cuda and config.single_d_pass)
        self.G_run, self.D_run = dist.wrap_model(self.G, self.dist), dist.wrap_model(self.D, self.dist)
        self.D_in_G_loss = self.D
        if cuda and config.compile:
            self.G_run, self.D_run = torch.compile(self.G_run), torch.compile(self.D_run)
            self.D_in_G_loss = torch.compile(self.D) if self.dist.enabled else self.D_run
        self.step = 0
        self.epoch = 0
        # Each rank takes every world_size-th sample of an epoch (a remainder of fewer than
        # world_size samples is left out), so all ranks run the same number of steps.
        self.steps_per_epoch = math.ceil(len(train_set) // self.dist.world_size / config.batch_size)

    # -- paths
    @property
    def latest_path(self) -> Path:
        return self.out_dir / "checkpoints" / "latest.pt"

    @property
    def generator_path(self) -> Path:
        return self.out_dir / "generator.pt"

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype or torch.float32,
                              enabled=self.autocast_dtype is not None)

    def set_lr(self, epoch: int) -> float:
        lr = self.config.lr * lr_factor(epoch, self.config.epochs, self.config.epoch_decay)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr
        return lr

    # -- the step
    def train_step(self, batch: dict, sync: bool = True) -> dict:
        """One G and one D update on a batch (Pix2PixHD order: all D outputs from the same D).

        Returns the losses as floats, or with ``sync=False`` as GPU tensors (no host sync).
        """
        x = batch["input"].to(self.device, non_blocking=True)
        y = batch["target"].to(self.device, non_blocking=True)
        if self.memory_format is torch.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            y = y.contiguous(memory_format=torch.channels_last)
        if self.single_d_pass:
            fake, pred_real, pred_fake_detached, pred_fake = self._forward_single_d_pass(x, y)
        else:
            with self._autocast():
                fake = self.G(x)
                pred_real = self.D(torch.cat([x, y], dim=1))
                pred_fake_detached = self.D(torch.cat([x, fake.detach()], dim=1))
                pred_fake = self.D(torch.cat([x, fake], dim=1))
        loss_D = discriminator_loss(pred_fake_detached, pred_real)
        loss_G = generator_loss(pred_fake, pred_real, self.config.lambda_fm)

        self.opt_G.zero_grad(set_to_none=True)
        loss_G.total.backward()
        self.opt_G.step()
        # G's backward also filled D's .grad; D's update uses only its own loss.
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()
        self.step += 1
        self._last = (x, y, fake)
        losses = {"loss_D": loss_D.detach(), "loss_G": loss_G.total.detach(),
                  "loss_G_gan": loss_G.gan.detach(), "loss_G_fm": loss_G.feature_matching.detach()}
        if not sync:
            return losses
        return {k: dist.all_reduce_mean(v, self.dist).item() for k, v in losses.items()}

    def _forward_single_d_pass(self, x, y):
        """G(x); D on [fake.detach(), real] as one batch; D(fake) for G's loss with D frozen.

        The same numbers as three D passes (the norm layers are per sample) with one D forward
        per backward (as DDP needs), larger kernels, and no D weight gradients from G's loss.
        """
        n = x.shape[0]
        with self._autocast():
            fake = self.G_run(x)
            both = self.D_run(torch.cat([torch.cat([x, fake.detach()], dim=1),
                                         torch.cat([x, y], dim=1)], dim=0))
            pred_fake_detached = [[f[:n] for f in scale] for scale in both]
            pred_real = [[f[n:] for f in scale] for scale in both]
            self.D.requires_grad_(False)
            try:
                pred_fake = self.D_in_G_loss(torch.cat([x, fake], dim=1))
            finally:
                self.D.requires_grad_(True)
        return fake, pred_real, pred_fake_detached, pred_fake

    # -- checkpoints
    def state(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT, "software_version": __version__,
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "step": self.step, "epoch": self.epoch, "config": self.config.to_dict(),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        }

    def save_checkpoint(self, path: Path | None = None) -> Path:
        path = path or self.latest_path
        _save(self.state(), path)
        return path

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        ckpt = load_checkpoint(path, map_location=self.device)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise InputDataError(path, "a generator-only file cannot resume training; "
                                 "use checkpoints/latest.pt", reason="checkpoint_mismatch")
        check_model_config(path, ckpt["config"], self.config)
        load_state(path, self.G, ckpt["G"], "generator")
        load_state(path, self.D, ckpt["D"], "discriminator")
        load_state(path, self.opt_G, ckpt["opt_G"], "generator optimizer")
        load_state(path, self.opt_D, ckpt["opt_D"], "discriminator optimizer")
        self.step, self.epoch = int(ckpt["step"]), int(ckpt["epoch"])
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        if ckpt["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["rng"]["cuda"]])

    def save_generator(self) -> Path:
        _save({"format": GENERATOR_FORMAT, "software_version": __version__,
               "G": self.G.state_dict(), "config": self.config.to_dict(),
               "step": self.step, "epoch": self.epoch}, self.generator_path)
        return self.generator_path

    # -- the loop
    def make_loader(self, order: list[int]):
        """Batches of the training set in ``order``: DataLoader worker processes or threads."""
        cfg = self.config
        pin = self.device.type == "cuda"
        if cfg.loader == "threads" and cfg.num_workers:
            from farside_gan.model.loader import ThreadedLoader
            return ThreadedLoader(self.train_set, cfg.batch_size, order, threads=cfg.num_workers,
                                  prefetch=cfg.prefetch_factor, pin_memory=pin)
        workers = {"prefetch_factor": cfg.prefetch_factor} if cfg.num_workers else {}
        return DataLoader(self.train_set, batch_size=cfg.batch_size, sampler=order,
                          num_workers=cfg.num_workers, pin_memory=pin, **workers)

    def epoch_order(self, epoch: int) -> list[int]:
        """The shuffled sample order of an epoch: a function of (seed, epoch) only."""
        g = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        return torch.randperm(len(self.train_set), generator=g).tolist()

    def fit(self, resume: bool = True) -> Path:
        """Train until ``epochs`` (or ``max_steps``) are done; returns the generator file."""
        cfg = self.config
        if resume and self.latest_path.exists():
            self.load_checkpoint(self.latest_path)
            log.info("resuming from %s at step %d (epoch %d)", self.latest_path, self.step, self.epoch)
        main = self.dist.is_main  # only rank 0 writes logs, previews and checkpoints
        if main:
            self._truncate_logs()
        total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps:
            total_steps = min(total_steps, cfg.max_steps)
        from tqdm.auto import tqdm
        bar = tqdm(total=total_steps, initial=self.step, disable=not (cfg.progress and main),
                   desc="train", unit="step", dynamic_ncols=True)
        try:
            while self.step < total_steps:
                self.epoch = self.step // self.steps_per_epoch
                skip = self.step - self.epoch * self.steps_per_epoch  # batches done before a resume
                lr = self.set_lr(self.epoch)
                self.train_set.set_epoch(self.epoch)
                order = self.epoch_order(self.epoch)
                world = self.dist.world_size
                order = order[:len(order) - len(order) % world][self.dist.rank::world]
                order = order[skip * cfg.batch_size:]
                loader = self.make_loader(order)
                for batch in loader:
                    t0 = time.perf_counter()
                    # On the GPU, read the losses back only when they are logged: a host sync
                    # every step would leave the GPU idle while Python launches the next one.
                    log_now = (self.step + 1) % cfg.log_every == 0 or self.step + 1 == total_steps
                    sync = log_now or self.device.type == "cpu"
                    losses = self.train_step(batch) if sync else self.train_step(batch, sync=False)
                    seconds = time.perf_counter() - t0
                    bar.update(1)
                    if sync:
                        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
                    if main and (self.step % cfg.log_every == 0 or self.step == total_steps):
                        self._log_row("losses.csv", LOSS_COLUMNS,
                                      {"step": self.step, "epoch": self.epoch, "lr": lr,
                                       **losses, "seconds": seconds})
                    if main and cfg.preview_every and self.step % cfg.preview_every == 0:
                        self.write_preview()
                    end_of_epoch = self.step % self.steps_per_epoch == 0
                    if main and end_of_epoch:
                        self.epoch_end(self.step // self.steps_per_epoch)
                    # Not at every epoch end: with small datasets epochs are a few steps, and a
                    # full checkpoint (~600 MB with the default model) costs seconds.
                    if main and (self.step % cfg.checkpoint_every == 0 or self.step == total_steps):
                        self.save_checkpoint()
                    if end_of_epoch or self.step == total_steps:
                        break
        finally:
            bar.close()
        if not main:
            dist.barrier(self.dist)  # wait for rank 0's generator file
            return self.generator_path
        path = self.save_generator()
        dist.barrier(self.dist)
        return path

    def epoch_end(self, epochs_done: int) -> None:
        cfg = self.config
        if self.val_set is not None and cfg.val_every_epochs and epochs_done % cfg.val_every_epochs == 0:
            row = self.validate()
            self._log_row("validation.csv", VALIDATION_COLUMNS,
                          {"epoch": epochs_done, "step": self.step, **row})
            log.info("epoch %d validation: %s", epochs_done, row)
        if cfg.keep_every_epochs and epochs_done % cfg.keep_every_epochs == 0:
            self.save_checkpoint(self.out_dir / "checkpoints" / f"epoch_{epochs_done:04d}.pt")

    @torch.no_grad()
    def validate(self) -> dict:
        """Mean CC, binned CC and RMSE (Gauss) on the disk over the first val samples."""
        from farside_gan.metrics import bin_image, bin_mask, pearson_cc, rmse
        from farside_gan.geometry import disk_mask
        from farside_gan.model.data import read_stack
        self.G.eval()
        scores = []
        try:
            for i in range(min(len(self.val_set), self.config.val_max_samples)):
                item = self.val_set[i]
                _, header = read_stack(self.val_set.pairs[i][0])
                n = item["input"].shape[-1]
                disk = disk_mask(n, disk_radius_px(header, n))
                with self._autocast():
                    out = self.G(item["input"][None].to(self.device))
                gen = out.float().clamp(-1, 1)[0, 0].cpu().numpy() * self.config.hmi_clip
                real = item["target"][0].numpy() * self.config.hmi_clip
                gen = np.where(disk, gen, 0.0)
                f = self.config.bin_factor
                scores.append((pearson_cc(gen, real, disk),
                               pearson_cc(bin_image(gen, f), bin_image(real, f), bin_mask(disk, f)),
                               rmse(gen, real, disk)))
        finally:
            self.G.train()
        cc, ccb, err = (float(np.nanmean(c)) for c in zip(*scores))
        return {"n": len(scores), "cc": cc, "cc_binned": ccb, "rmse": err}

    def write_preview(self) -> Path:
        """PNG of the first sample of the last batch: input channels, real, generated."""
        from farside_gan.evaluate import preview_figure
        x, y, fake = (t[0].detach().float().cpu().numpy() for t in self._last)
        path = self.out_dir / "previews" / f"step_{self.step:07d}.png"
        fig = preview_figure(x, y[0], fake[0], title=f"step {self.step}, epoch {self.epoch}")
        with atomic_output(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=80)
        return path

    # -- CSV logs (appended; on resume rows past the checkpoint's step are dropped)
    def _log_row(self, name: str, columns, row: dict) -> None:
        path = self.out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        size = 0 if new else path.stat().st_size
        try:
            with open(path, "a", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns)
                if new:
                    writer.writeheader()
                writer.writerow({k: row.get(k) for k in columns})
        except OSError as exc:  # e.g. a full disk: no half row left behind, one line said
            if new:
                path.unlink(missing_ok=True)
            else:
                os.truncate(path, size)
            raise OutputError(path, f"cannot write (append a log row): {exc.strerror or exc}") from exc

    def _truncate_logs(self) -> None:
        for name, columns in (("losses.csv", LOSS_COLUMNS), ("validation.csv", VALIDATION_COLUMNS)):
            path = self.out_dir / name
            if not path.exists():
                continue
            with open(path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= self.step]
            with atomic_output(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)


def train(config: TrainConfig, out_dir: str | os.PathLike, manifest: str | os.PathLike | None = None,
          data_dir: str | os.PathLike | None = None, val_dir: str | os.PathLike | None = None,
          device: str = "auto", resume: bool = True) -> Path:
    """Build datasets from a manifest (train/eval splits) or pair directories, and train."""
    aug = Augmentation(config.augment_rotation_deg, config.augment_translate_px)
    common = {"in_channels": config.in_channels, "seed": config.seed}
    if (manifest is None) == (data_dir is None):
        raise ValueError("give exactly one of a manifest or a data directory")
    if manifest is not None:
        pairs, times = manifest_pairs(manifest, "train")
        if not pairs:
            raise InputDataError(manifest, "no rows with status 'ok' and split 'train'",
                                 reason="no_data")
        train_set = PairedFitsDataset(pairs, times=times, augmentation=aug, **common)
        val_pairs, val_times = manifest_pairs(manifest, "eval")
        # a manifest without eval rows trains without validation
        val_set = PairedFitsDataset(val_pairs, times=val_times, **common) if val_pairs else None
    else:
        train_set = PairedFitsDataset.from_directory(data_dir, augmentation=aug, **common)
        val_set = PairedFitsDataset.from_directory(val_dir, **common) if val_dir else None
    trainer = Trainer(config, train_set, out_dir, val_set=val_set, device=device)
    try:
        return trainer.fit(resume=resume)
    finally:
        if trainer.dist.enabled:
            dist.destroy_distributed()
