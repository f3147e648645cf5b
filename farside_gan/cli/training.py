"""``farside-gan train``: a thin wrapper over ``farside_gan.training``."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the Pix2PixHD model on AIA -> HMI pairs",
                              description="Train (or resume) the GAN. Writes OUT_DIR/checkpoints/"
                              "latest.pt, OUT_DIR/generator.pt, losses.csv, validation.csv, "
                              "previews/*.png. The training files' frame conventions (disk, mask, "
                              "normalization, channels: their headers) are recorded in the "
                              "checkpoint; files that differ from each other are refused.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="dataset manifest CSV (split train; eval for validation)")
    src.add_argument("--data-dir", help="directory with input/ and target/ FITS of the same names")
    p.add_argument("--val-dir", help="validation pairs directory (with --data-dir; none: no "
                   "validation)")
    p.add_argument("--out-dir", required=True, help="the run's directory (checkpoints, logs, "
                   "generator.pt)")
    p.add_argument("--config", help="YAML file; its model: and training: sections are read "
                   "(none: TrainConfig's defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set epochs=10 (repeatable)")
    p.add_argument("--expect", action="append", default=[], metavar="KEY=VALUE",
                   help="a frame convention the training files must have (size, rsun_px, "
                   "mask_radius, euv_median, euv_clip=LOW,HIGH, hmi_clip), e.g. the workflow's "
                   "image: and normalize: values; a file that differs is an error (repeatable)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from OUT_DIR/checkpoints/latest.pt if present")
    p.set_defaults(func=_train)


def _train(args) -> int:
    from farside_gan.core.conventions import parse_expected
    from farside_gan.training.trainer import TrainConfig, train
    config = TrainConfig.from_yaml(args.config) if args.config else TrainConfig()
    try:
        config = config.with_overrides(args.set)
        expected = parse_expected(args.expect)
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"farside-gan train: error: {exc}")
    path = train(config, args.out_dir, manifest=args.manifest, data_dir=args.data_dir,
                 val_dir=args.val_dir, device=args.device, resume=args.resume,
                 expected_conventions=expected)
    print(path)
    return 0
