"""``farside-gan train | predict | evaluate``: thin wrappers over training, inference, evaluate."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    from farside_gan.layout import NEARSIDE_LABEL
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

    p = subparsers.add_parser("predict", help="generate magnetograms from EUV stacks",
                              description="One magnetogram FITS (Gauss, NaN off the disk) per input "
                              "stack: in --out-dir named {instrument}_{YYYYMMDD_HHMMSS}.fits after "
                              "the input's instrument and DATE-OBS, or at the --output paths. A "
                              "stack whose frame conventions differ from the model's training "
                              "data is refused.")
    p.add_argument("--checkpoint", required=True, help="generator.pt or a training checkpoint")
    dest = p.add_mutually_exclusive_group(required=True)
    dest.add_argument("--out-dir", help="directory for the outputs, named after the inputs' times")
    dest.add_argument("--output", action="append", metavar="OUT.fits",
                      help="explicit output path, once per input stack, in order")
    p.add_argument("--batch-size", type=int, default=4, help="stacks per generator call")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto: bf16 on CUDA, fp32 on the CPU")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the generator on CUDA (pays over thousands of maps)")
    p.add_argument("--prepared", metavar="DIR",
                   help="a prepared period directory (`prepare`): every usable stack in it, "
                   "written as OUT_DIR/<time>.fits")
    members = p.add_mutually_exclusive_group()
    members.add_argument("--ensemble-members", type=int, default=0, metavar="N",
                         help="per-pixel uncertainty from a snapshot ensemble of N generators: "
                         "the checkpoint (a run's generator.pt) and the N-1 latest "
                         "checkpoints/epoch_NNNN.pt of its run; written as the maps' "
                         "UNCERTAINTY extension (G). 0: none. Costs N inferences per map")
    members.add_argument("--member", action="append", default=[], metavar="CKPT",
                         help="an ensemble member besides --checkpoint (e.g. another training "
                         "seed's generator.pt); repeatable; as --ensemble-members")
    p.add_argument("stacks", nargs="*", metavar="STACK.fits", help="EUV stacks (`stack`)")
    p.set_defaults(func=_predict)

    p = subparsers.add_parser("evaluate", help="score generated magnetograms against the truth",
                              description="Writes OUT_DIR/metrics.csv (a row per map and "
                              "comparison), summary.csv, scatter.png, flux.png and maps/*.png. A "
                              "comparison SIDE/OBSERVER/TRUTH (e.g. farside/stereo_a/synthetic) "
                              "pairs PRED_DIR/<time>.fits with TARGET_DIR/<time>.fits; plain file "
                              "lists (--predictions/--targets) pair by DATE-OBS. Each map is "
                              "scored on its own disk (its R_SUN and MASKRAD).")
    p.add_argument("--comparison", nargs=3, action="append", default=[],
                   metavar=("LABEL", "PRED_DIR", "TARGET_DIR"),
                   help="score the maps of PRED_DIR against those of TARGET_DIR with the same "
                   "name, as comparison LABEL (repeatable; the same LABEL adds directories)")
    p.add_argument("--predictions", nargs="+", metavar="P.fits", help="generated maps (Gauss)")
    p.add_argument("--targets", nargs="+", metavar="T.fits",
                   help="their truths: normalized HMI targets or Gauss maps")
    p.add_argument("--label", default=NEARSIDE_LABEL,
                   help="comparison name of --predictions/--targets")
    p.add_argument("--out-dir", required=True, help="directory for the tables and plots")
    p.add_argument("--ar-threshold", type=float, default=100.0,
                   help="|B| (G, binned) at or above which a pixel is active region")
    p.add_argument("--qs-threshold", type=float, default=None,
                   help="|B| (G, binned) below which a pixel is quiet Sun (default: the AR "
                   "threshold)")
    p.add_argument("--bin", type=int, default=None,
                   help="binning factor (default: the solar area of 8x8 px at a 450-px radius)")
    p.add_argument("--time-tolerance", type=float, default=3600.0,
                   help="seconds between prediction and target DATE-OBS (file lists)")
    p.add_argument("--max-maps", type=int, default=20,
                   help="side-by-side map PNGs to draw per comparison")
    p.set_defaults(func=_evaluate)


def _train(args) -> int:
    from farside_gan.training import TrainConfig, train
    from farside_gan.conventions import parse_expected
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


def _predict(args) -> int:
    from farside_gan.inference import predict, predict_prepared
    options = dict(batch_size=args.batch_size, device=args.device, precision=args.precision,
                   compile=args.compile, ensemble=_ensemble(args))
    if args.prepared:
        if args.stacks or not args.out_dir:
            raise SystemExit("farside-gan predict: error: --prepared takes --out-dir and no "
                             "STACK.fits arguments")
        for path in predict_prepared(args.checkpoint, args.prepared, args.out_dir, **options):
            print(path)
        return 0
    if not args.stacks:
        raise SystemExit("farside-gan predict: error: give STACK.fits files or --prepared DIR")
    if args.output and len(args.output) != len(args.stacks):
        raise SystemExit(f"farside-gan predict: error: {len(args.output)} --output for "
                         f"{len(args.stacks)} stacks")
    for path in predict(args.checkpoint, args.stacks, args.out_dir, outputs=args.output,
                        **options):
        print(path)
    return 0


def _ensemble(args) -> list:
    """The ensemble members besides --checkpoint (``farside_gan.uncertainty``)."""
    if args.ensemble_members == 1 or args.ensemble_members < 0:
        raise SystemExit("farside-gan predict: error: --ensemble-members is 0 (none) or at "
                         f"least 2, not {args.ensemble_members}")
    if args.ensemble_members:
        from farside_gan.uncertainty import snapshot_members
        return snapshot_members(args.checkpoint, args.ensemble_members)[1:]
    return list(args.member)


def _evaluate(args) -> int:
    from farside_gan.evaluate import (Comparison, evaluate_comparisons, pair_by_time,
                                      pair_directories)
    comparisons: dict[str, Comparison] = {}
    try:
        for label, predictions, targets in args.comparison:
            if label not in comparisons:
                comparisons[label] = Comparison.from_label(label)
            pair_directories(comparisons[label], [predictions], [targets])
        if bool(args.predictions) != bool(args.targets):
            raise ValueError("--predictions and --targets go together")
        if args.predictions:
            comparison = comparisons.setdefault(args.label, Comparison.from_label(args.label))
            comparison.pairs += pair_by_time(args.predictions, args.targets, args.time_tolerance)
    except ValueError as exc:
        raise SystemExit(f"farside-gan evaluate: error: {exc}")
    if not comparisons:
        raise SystemExit("farside-gan evaluate: error: give --comparison or --predictions/--targets")
    print(evaluate_comparisons(list(comparisons.values()), args.out_dir, bin_factor=args.bin,
                               ar_threshold=args.ar_threshold, qs_threshold=args.qs_threshold,
                               max_maps=args.max_maps))
    return 0
