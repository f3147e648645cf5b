"""``farside-gan train | predict | evaluate``: thin wrappers over training, inference, evaluate."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the Pix2PixHD model on AIA -> HMI pairs",
                              description="Train (or resume) the GAN. Writes OUT_DIR/checkpoints/"
                              "latest.pt, OUT_DIR/generator.pt, losses.csv, validation.csv, "
                              "previews/*.png.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="dataset manifest CSV (split train; eval for validation)")
    src.add_argument("--data-dir", help="directory with input/ and target/ FITS of the same names")
    p.add_argument("--val-dir", help="validation pairs directory (with --data-dir)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--config", help="YAML file; its model: and training: sections are read")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set epochs=10 (repeatable)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from OUT_DIR/checkpoints/latest.pt if present (default)")
    p.set_defaults(func=_train)

    p = subparsers.add_parser("predict", help="generate magnetograms from EUV stacks",
                              description="One magnetogram FITS (Gauss) per input stack: in "
                              "--out-dir named {aia|euvi_a|euvi_b}_{YYYYMMDD_HHMMSS}.fits after "
                              "the input's observatory and DATE-OBS, or at the --output paths.")
    p.add_argument("--checkpoint", required=True, help="generator.pt or a training checkpoint")
    dest = p.add_mutually_exclusive_group(required=True)
    dest.add_argument("--out-dir", help="directory for the outputs, named after the inputs' times")
    dest.add_argument("--output", action="append", metavar="OUT.fits",
                      help="explicit output path, once per input stack, in order")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto: bf16 on CUDA, fp32 on the CPU")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the generator on CUDA (pays over thousands of maps)")
    p.add_argument("stacks", nargs="+", metavar="STACK.fits")
    p.set_defaults(func=_predict)

    p = subparsers.add_parser("evaluate", help="compare generated with real magnetograms",
                              description="Writes OUT_DIR/metrics.csv, summary.csv, scatter.png, "
                              "flux.png and maps/*.png.")
    p.add_argument("--predictions", nargs="+", required=True, metavar="P.fits")
    p.add_argument("--targets", nargs="+", required=True, metavar="T.fits",
                   help="real magnetograms: normalized HMI targets or Gauss maps")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--ar-threshold", type=float, default=100.0,
                   help="|B| (G, binned) at or above which a pixel is active region")
    p.add_argument("--qs-threshold", type=float, default=None,
                   help="|B| (G, binned) below which a pixel is quiet Sun (default: AR threshold)")
    p.add_argument("--bin", type=int, default=8, help="binning factor for the binned metrics")
    p.add_argument("--time-tolerance", type=float, default=3600.0,
                   help="seconds between prediction and target DATE-OBS for a pair")
    p.add_argument("--max-maps", type=int, default=20, help="side-by-side map PNGs to draw")
    p.set_defaults(func=_evaluate)


def _train(args) -> int:
    from farside_gan.training import TrainConfig, train
    config = TrainConfig.from_yaml(args.config) if args.config else TrainConfig()
    try:
        config = config.with_overrides(args.set)
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"farside-gan train: error: {exc}")
    path = train(config, args.out_dir, manifest=args.manifest, data_dir=args.data_dir,
                 val_dir=args.val_dir, device=args.device, resume=args.resume)
    print(path)
    return 0


def _predict(args) -> int:
    from farside_gan.inference import predict
    if args.output and len(args.output) != len(args.stacks):
        raise SystemExit(f"farside-gan predict: error: {len(args.output)} --output for "
                         f"{len(args.stacks)} stacks")
    for path in predict(args.checkpoint, args.stacks, args.out_dir, batch_size=args.batch_size,
                        device=args.device, outputs=args.output, precision=args.precision,
                        compile=args.compile):
        print(path)
    return 0


def _evaluate(args) -> int:
    from farside_gan.evaluate import evaluate
    print(evaluate(args.predictions, args.targets, args.out_dir, bin_factor=args.bin,
                   ar_threshold=args.ar_threshold, qs_threshold=args.qs_threshold,
                   tolerance_s=args.time_tolerance, max_maps=args.max_maps))
    return 0
