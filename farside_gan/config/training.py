"""Model and training settings: :class:`TrainConfig`, the one list of what ``farside-gan train``
accepts (the workflow's ``model:`` and ``training:`` sections, ``--set key=value``).

No torch here: the workflow checks a configuration with it while planning.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

from farside_gan.core.documents import mapping_section, read_yaml_mapping
from farside_gan.core.errors import InputDataError

log = logging.getLogger(__name__)

LOADERS = ("threads", "workers")
PRECISIONS = ("auto", "bf16", "fp32")
#: The workflow's ``training:`` keys that are not TrainConfig's: what the train job asks for
#: (device, GPUs per host, hosts), read by the rules and not given to ``farside-gan train``.
WORKFLOW_KEYS = ("device", "gpus", "nodes")


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
    lambda_cc: float = 0.0          # correlation-coefficient loss weight (Pix2PixCC); 0 = off
    n_cc: int = 4                   # scales of the correlation loss (3x3/2 average pooling between)
    lambda_scale: float = 0.0       # binned unsigned-flux (field scale) loss weight; 0 = off
    init_std: float = 0.02
    seed: int = 0
    augment_rotation_deg: float = 0.0
    augment_translate_px: float = 0.0
    augment_ns_flip: bool = False   # north-south flip with the target's sign flipped, p = 1/2
    ema_decay: float = 0.0          # moving average of G's weights (the run's generator); 0 = off
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
    max_steps: int = 0              # stop after this many steps in total; 0 = run all epochs
    progress: bool = True           # a progress bar on a terminal, else a progress line in the log
    progress_seconds: float = 30.0  # seconds between progress lines when stderr is not a terminal
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
    # Settings that may change between a run and its resumption: they change how fast it goes,
    # what it logs and when it stops, not what one step computes.
    RUNTIME_FIELDS = ("num_workers", "num_threads", "prefetch_factor", "loader", "progress",
                      "progress_seconds", "log_every", "preview_every", "checkpoint_every",
                      "keep_every_epochs", "val_every_epochs", "val_max_samples", "max_steps",
                      "channels_last", "fused_adam", "compile", "cudnn_benchmark", "single_d_pass",
                      "gemm_convs")
    # The learning-rate schedule: a run whose checkpoint differs from it only in these (and
    # RUNTIME_FIELDS) continues from the checkpoint, following the new schedule from there
    # ("train longer": more epochs on a finished run).
    SCHEDULE_FIELDS = ("epochs", "epoch_decay")

    def __post_init__(self):
        if self.epoch_decay > self.epochs:
            raise ValueError(f"epoch_decay ({self.epoch_decay}) exceeds epochs ({self.epochs})")
        if self.loader not in LOADERS:
            raise ValueError(f"loader must be one of {LOADERS}, not {self.loader!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), not {self.ema_decay}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"mixed_precision must be one of {PRECISIONS}, not "
                             f"{self.mixed_precision!r}")

    @property
    def model(self) -> dict:
        return {k: getattr(self, k) for k in self.MODEL_FIELDS}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def resume_differences(self, saved: dict, ignore=()) -> list[str]:
        """The settings (other than RUNTIME_FIELDS and ``ignore``) where a checkpoint's ``saved``
        config differs. A setting ``saved`` lacks counts as its default: the checkpoint was made
        before the setting existed, and a new setting's default is the behaviour from before."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        differ = []
        for k, v in self.to_dict().items():
            then = saved.get(k, defaults[k])
            if k not in self.RUNTIME_FIELDS and k not in ignore and then != v:
                differ.append(f"{k}: checkpoint {then!r} != config {v!r}")
        return differ

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
        doc = read_yaml_mapping(path, "a configuration")
        sections = [mapping_section(doc, key, path) for key in ("model", "training")]
        values = {**sections[0], **sections[1]}
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
