"""Pix2PixHD training: one loop, one per-step function, atomic checkpoints, exact resume.

Layout of an output directory::

    checkpoints/                   the run's state, what a resumed run continues from:
      latest.pt                    every ``checkpoint_every`` steps and at the end
      epoch_NNNN.pt                every ``keep_every_epochs`` epochs
      losses.csv, validation.csv   the logs so far (appended while training)
    generator.pt                   the final generator (what ``predict`` needs): with
                                   ``ema_decay`` > 0 the moving average of G's weights
    losses.csv                     step, epoch, lr, loss_D, loss_G, loss_G_gan, loss_G_fm,
                                   loss_G_cc, loss_G_scale, seconds
    validation.csv                 epoch, step, n, cc, cc_binned, rmse (Gauss) on the eval split
    previews/step_NNNNNNN.png      input channels / real / generated

The top-level ``losses.csv``, ``validation.csv`` and ``generator.pt`` are written once, atomically,
when the run ends (generator.pt last), so a workflow can declare them as outputs and delete them
after a failed job without losing anything a rerun needs. A run resumes from
``checkpoints/latest.pt`` when that checkpoint is of the same settings
(``TrainConfig.RUNTIME_FIELDS`` may differ) on the same training files and has steps left to
run: an interrupted run, or a run, finished or not, whose ``epochs``/``epoch_decay``
(``TrainConfig.SCHEDULE_FIELDS``) changed since, which goes on with the new learning-rate
schedule from its step (more epochs on a finished run train longer, as Pix2PixHD's
``--continue_train`` did). Otherwise it starts at step 0 and says why.

The training files' frame conventions (:mod:`farside_gan.core.conventions`: disk, mask, EUV
normalization, channel order, the targets' HMI clip) are read from their headers before the
first step; files that differ are refused naming one. They give the validation its disk and
Gauss scale and go into every checkpoint and ``generator.pt``, which ``predict`` checks its
stacks against and turns its output into Gauss with.

Speed work (bf16 is here; channels-last, fused Adam, torch.compile, DDP via
``farside_gan.training.distributed``) belongs in :meth:`Trainer.__init__` (model/optimizer set-up) and
:meth:`Trainer.train_step` (the step); checkpoints always store the unwrapped modules.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from farside_gan import __version__
from farside_gan.config.training import TrainConfig
from farside_gan.core import conventions as frame_conventions
from farside_gan.core.conventions import Conventions
from farside_gan.core.errors import InputDataError, OutputError
from farside_gan.core.fitsio import atomic_output
from farside_gan.core.header_checks import check_image_size_for_generator
from farside_gan.core.metrics import bin_factor_for
from farside_gan.core.progress import StepProgress
from farside_gan.model.accel import use_gemm_convs
from farside_gan.model.checkpoint import (CHECKPOINT_FORMAT, GENERATOR_FORMAT, build_networks,
                                          check_model_config, load_checkpoint, load_state,
                                          save_checkpoint)
from farside_gan.model.losses import ScaleGeometry, discriminator_loss, generator_loss
from farside_gan.model.networks import init_weights
from farside_gan.training import distributed as dist
from farside_gan.training.data import Augmentation, PairedFitsDataset, manifest_pairs
from farside_gan.training.ema import GeneratorAverage

log = logging.getLogger(__name__)

LOSS_COLUMNS = ("step", "epoch", "lr", "loss_D", "loss_G", "loss_G_gan", "loss_G_fm", "loss_G_cc",
                "loss_G_scale", "seconds")
VALIDATION_COLUMNS = ("epoch", "step", "n", "cc", "cc_binned", "rmse")


def lr_factor(epoch: int, epochs: int, epoch_decay: int) -> float:
    """1 for the first ``epoch_decay`` epochs, then linearly down (reaching 0 after the last)."""
    if epoch < epoch_decay:
        return 1.0
    return max(0.0, 1.0 - (epoch - epoch_decay + 1) / (epochs - epoch_decay + 1))


def files_fingerprint(paths) -> str:
    """sha256 over each file's path, size and modification time: changes when a file does."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise InputDataError(path, f"cannot read training file ({exc.strerror})",
                                 reason="missing_file") from exc
        digest.update(f"{os.fspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


# ---------------------------------------------------------------- trainer

class Trainer:
    """Holds networks, optimizers, data and output paths; :meth:`fit` runs (or resumes) training."""

    def __init__(self, config: TrainConfig, train_set: PairedFitsDataset, out_dir: str | os.PathLike,
                 val_set: PairedFitsDataset | None = None, device: str = "auto",
                 conventions: Conventions | None = None):
        self.config = config
        if conventions is not None:
            self.conventions = conventions  # else read from the files when first needed
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
        # The moving average of the bare G's weights (training.ema), updated after each G step.
        self.ema = GeneratorAverage(self.G, config.ema_decay) if config.ema_decay else None
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
    def state_dir(self) -> Path:
        """Checkpoints and the logs up to the latest step: what a resumed run continues from."""
        return self.out_dir / "checkpoints"

    @property
    def latest_path(self) -> Path:
        return self.state_dir / "latest.pt"

    @property
    def total_steps(self) -> int:
        total = self.config.epochs * self.steps_per_epoch
        return min(total, self.config.max_steps) if self.config.max_steps else total

    @functools.cached_property
    def data_fingerprint(self) -> str:
        """The training and validation files as they are now (see :func:`files_fingerprint`)."""
        sets = [s for s in (self.train_set, self.val_set) if s is not None]
        return files_fingerprint(p for s in sets for pair in s.pairs for p in pair)

    @functools.cached_property
    def conventions(self) -> Conventions:
        """The frame conventions of the training and validation files (one set: a file that
        differs is an error naming it): the geometry validation scores on, the Gauss of a
        target value of 1, what a prediction's inputs must have. Recorded in checkpoints. Their
        size must be one the generator takes."""
        sets = [s for s in (self.train_set, self.val_set) if s is not None]
        pairs = [pair for s in sets for pair in s.pairs]
        found = frame_conventions.of_pairs(pairs)
        try:
            check_image_size_for_generator(found.size, self.config.n_downsample)
        except ValueError as exc:
            raise InputDataError(pairs[0][0], f"a {found.size} px stack does not fit the "
                                 f"generator: {exc}", reason="bad_shape") from None
        return found

    @property
    def generator_path(self) -> Path:
        return self.out_dir / "generator.pt"

    @property
    def generator(self) -> torch.nn.Module:
        """The run's generator, what validation scores and ``generator.pt`` holds: the moving
        average of G's weights once a step has been averaged, else G."""
        return self.ema.module if self.ema is not None and self.step else self.G

    @functools.cached_property
    def scale_geometry(self) -> ScaleGeometry:
        """The scale term's disk and blocks, from the data's conventions: the published 8x8
        pixels at a 450 px radius, scaled to the data's R_SUN (the evaluation's binning)."""
        disk = torch.from_numpy(self.conventions.disk_mask()).to(self.device)
        return ScaleGeometry(disk, bin_factor_for(self.conventions.rsun_px))

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
        cfg = self.config
        loss_G = generator_loss(pred_fake, pred_real, cfg.lambda_fm, generated=fake, target=y,
                                lambda_cc=cfg.lambda_cc, n_cc=cfg.n_cc,
                                lambda_scale=cfg.lambda_scale,
                                scale_geometry=self.scale_geometry if cfg.lambda_scale else None)

        self.opt_G.zero_grad(set_to_none=True)
        loss_G.total.backward()
        self.opt_G.step()
        if self.ema is not None:
            self.ema.update(self.G, first=self.step == 0)
        # G's backward also filled D's .grad; D's update uses only its own loss.
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()
        self.step += 1
        self._last = (x, y, fake)
        losses = {"loss_D": loss_D.detach(), "loss_G": loss_G.total.detach(),
                  "loss_G_gan": loss_G.gan.detach(), "loss_G_fm": loss_G.feature_matching.detach()}
        if loss_G.correlation is not None:
            losses["loss_G_cc"] = loss_G.correlation.detach()
        if loss_G.scale is not None:
            losses["loss_G_scale"] = loss_G.scale.detach()
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
        average = {"G_ema": self.generator.state_dict()} if self.ema is not None else {}
        return {
            "format": CHECKPOINT_FORMAT, "software_version": __version__,
            "G": self.G.state_dict(), **average, "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "step": self.step, "epoch": self.epoch, "config": self.config.to_dict(),
            "conventions": self.conventions.to_dict(),
            "run": {"data": self.data_fingerprint, "world_size": self.dist.world_size},
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        }

    def save_checkpoint(self, path: Path | None = None) -> Path:
        path = path or self.latest_path
        save_checkpoint(self.state(), path)
        return path

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        self._restore(path, load_checkpoint(path, map_location=self.device))

    def resume_problem(self, ckpt: dict) -> str | None:
        """Why a checkpoint cannot be continued by this run, or None when it can."""
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            return "it holds a generator only"
        diffs = self.config.resume_differences(ckpt["config"], ignore=TrainConfig.SCHEDULE_FIELDS)
        if diffs:
            return "its settings differ (" + "; ".join(diffs) + ")"
        run = ckpt.get("run") or {}
        if run.get("world_size") != self.dist.world_size:
            return (f"it was made by {run.get('world_size')} processes, this run has "
                    f"{self.dist.world_size}")
        if run.get("data") != self.data_fingerprint:
            return "the training files changed since (added, removed or rewritten)"
        if ckpt.get("conventions") != self.conventions.to_dict():
            return "its data's frame conventions differ from this run's"
        if int(ckpt["step"]) >= self.total_steps:
            return f"it ends a finished run (step {ckpt['step']} of {self.total_steps})"
        return None

    def _restore(self, path, ckpt: dict) -> None:
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise InputDataError(path, "a generator-only file cannot resume training; "
                                 "use checkpoints/latest.pt", reason="checkpoint_mismatch")
        check_model_config(path, ckpt["config"], self.config)
        load_state(path, self.G, ckpt["G"], "generator")
        load_state(path, self.D, ckpt["D"], "discriminator")
        if self.ema is not None:
            if "G_ema" not in ckpt:
                raise InputDataError(path, "checkpoint lacks the generator's moving average "
                                     "(G_ema) that ema_decay asks for",
                                     reason="checkpoint_mismatch")
            load_state(path, self.ema.module, ckpt["G_ema"], "generator average")
        load_state(path, self.opt_G, ckpt["opt_G"], "generator optimizer")
        load_state(path, self.opt_D, ckpt["opt_D"], "discriminator optimizer")
        self.step, self.epoch = int(ckpt["step"]), int(ckpt["epoch"])
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        if ckpt["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["rng"]["cuda"]])

    def save_generator(self) -> Path:
        save_checkpoint({"format": GENERATOR_FORMAT, "software_version": __version__,
                         "G": self.generator.state_dict(), "config": self.config.to_dict(),
                         "conventions": self.conventions.to_dict(),
                         "step": self.step, "epoch": self.epoch}, self.generator_path)
        return self.generator_path

    # -- the loop
    def make_loader(self, order: list[int]):
        """Batches of the training set in ``order``: DataLoader worker processes or threads."""
        cfg = self.config
        pin = self.device.type == "cuda"
        if cfg.loader == "threads" and cfg.num_workers:
            from farside_gan.training.loader import ThreadedLoader
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
        """Train until ``epochs`` (or ``max_steps``) are done; returns the generator file.

        With ``resume``, continues from ``checkpoints/latest.pt`` when :meth:`resume_problem`
        finds nothing against it; otherwise starts at step 0 (and says why).
        """
        cfg = self.config
        total_steps = self.total_steps
        log.info("training data conventions: %s", self.conventions)  # read and checked first
        if resume and self.latest_path.exists():
            ckpt = load_checkpoint(self.latest_path, map_location=self.device)
            problem = self.resume_problem(ckpt)
            if problem is None:
                self._restore(self.latest_path, ckpt)
                changed = [f"{k} {ckpt['config'].get(k)} -> {getattr(cfg, k)}"
                           for k in TrainConfig.SCHEDULE_FIELDS
                           if ckpt["config"].get(k) != getattr(cfg, k)]
                log.info("resuming from %s at step %d (epoch %d)%s", self.latest_path, self.step,
                         self.epoch, f"; {', '.join(changed)}: the learning rate follows the "
                         "new schedule from here" if changed else "")
            else:
                log.info("not resuming from %s: %s; starting at step 0", self.latest_path, problem)
            del ckpt
        main = self.dist.is_main  # only rank 0 writes logs, previews and checkpoints
        dist.barrier(self.dist)  # every rank has read the checkpoint before rank 0 changes it
        if main:
            if self.step == 0:
                self._clear_state()
            self._truncate_logs()
        bar = StepProgress(total_steps, initial=self.step, enabled=cfg.progress and main,
                           every_s=cfg.progress_seconds, logger=log)
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
                    bar.update(self.epoch, losses if sync else None)
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
        if total_steps == 0:  # an untrained baseline (epochs: 0): its state and an empty log
            self.save_checkpoint()
            self._log_header("losses.csv", LOSS_COLUMNS)
        self._publish_logs()
        path = self.save_generator()  # last: its presence says the run is complete
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
            self.save_checkpoint(self.state_dir / f"epoch_{epochs_done:04d}.pt")

    @torch.no_grad()
    def validate(self) -> dict:
        """Mean CC, binned CC and RMSE (Gauss) of :attr:`generator` on the disk over the first
        val samples, with the data's own conventions: its disk (``R_SUN``, ``MASKRAD``) and HMI
        clip (``NORMCLIP``)."""
        from farside_gan.core.metrics import bin_image, bin_mask, pearson_cc, rmse
        disk = self.conventions.disk_mask()
        gauss = self.conventions.hmi_clip
        generator = self.generator
        training = generator.training
        generator.eval()
        scores = []
        try:
            for i in range(min(len(self.val_set), self.config.val_max_samples)):
                item = self.val_set[i]
                with self._autocast():
                    out = generator(item["input"][None].to(self.device))
                gen = out.float().clamp(-1, 1)[0, 0].cpu().numpy() * gauss
                real = item["target"][0].numpy() * gauss
                gen = np.where(disk, gen, 0.0)
                f = self.config.bin_factor
                scores.append((pearson_cc(gen, real, disk),
                               pearson_cc(bin_image(gen, f), bin_image(real, f), bin_mask(disk, f)),
                               rmse(gen, real, disk)))
        finally:
            generator.train(training)
        cc, ccb, err = (float(np.nanmean(c)) for c in zip(*scores))
        return {"n": len(scores), "cc": cc, "cc_binned": ccb, "rmse": err}

    def write_preview(self) -> Path:
        """PNG of the first sample of the last batch: input channels, real, generated."""
        from farside_gan.training.figures import preview_figure
        x, y, fake = (t[0].detach().float().cpu().numpy() for t in self._last)
        path = self.out_dir / "previews" / f"step_{self.step:07d}.png"
        fig = preview_figure(x, y[0], fake[0], title=f"step {self.step}, epoch {self.epoch}")
        with atomic_output(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=80)
        return path

    # -- CSV logs (appended in the state directory; on resume rows past the checkpoint's step
    # are dropped; copied to the output directory when the run ends)
    def _log_row(self, name: str, columns, row: dict) -> None:
        path = self.state_dir / name
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

    def _log_header(self, name: str, columns) -> None:
        path = self.state_dir / name
        if not path.exists():
            with atomic_output(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
                csv.DictWriter(fh, fieldnames=columns).writeheader()

    def _truncate_logs(self) -> None:
        for name, columns in (("losses.csv", LOSS_COLUMNS), ("validation.csv", VALIDATION_COLUMNS)):
            path = self.state_dir / name
            if not path.exists():
                continue
            with open(path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= self.step]
            with atomic_output(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)

    def _clear_state(self) -> None:
        """Before step 0: drop the checkpoints of another (or a finished) run."""
        for path in (self.latest_path, *self.state_dir.glob("epoch_*.pt")):
            path.unlink(missing_ok=True)

    def _publish_logs(self) -> None:
        """The state's logs, copied whole to the output directory (atomically)."""
        for name in ("losses.csv", "validation.csv"):
            source, target = self.state_dir / name, self.out_dir / name
            if not source.exists():
                target.unlink(missing_ok=True)  # e.g. no validation in this run
                continue
            with atomic_output(target, suffix=".csv") as tmp:
                tmp.write_bytes(source.read_bytes())


def train(config: TrainConfig, out_dir: str | os.PathLike, manifest: str | os.PathLike | None = None,
          data_dir: str | os.PathLike | None = None, val_dir: str | os.PathLike | None = None,
          device: str = "auto", resume: bool = True, expected_conventions: dict | None = None) -> Path:
    """Build datasets from a manifest (train/eval splits) or pair directories, and train.

    ``expected_conventions`` (e.g. the workflow's ``image:`` and ``normalize:`` values, as for
    :func:`farside_gan.core.conventions.check`) must be what the data's headers say."""
    aug = Augmentation(config.augment_rotation_deg, config.augment_translate_px,
                       config.augment_ns_flip)
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
        if expected_conventions:
            stack, target = train_set.pairs[0]  # every file has the same conventions (of_pairs)
            expected = dict(expected_conventions)
            hmi = {k: expected.pop(k) for k in ("hmi_clip",) if k in expected}
            frame_conventions.check(trainer.conventions, expected, stack)
            frame_conventions.check(trainer.conventions, hmi, target)
        return trainer.fit(resume=resume)
    finally:
        if trainer.dist.enabled:
            dist.destroy_distributed()
