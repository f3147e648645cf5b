# Inference: the trained generator on every usable stack of a period, one job per period (the
# model is loaded once): AIA stacks of the evaluation months (near side, where HMI gives the
# truth) and STEREO/EUVI stacks (far side). Maps are <period>/<time>.fits in Gauss; with
# synchronic.ensemble_members N >= 2 each carries the spread of N generators (common.smk).

INFER_GPUS = min(GPUS, 1)
INFER_DEVICE = "cpu" if config["training"]["device"] == "cpu" else "auto"


rule predict_nearside:
    input:
        generator="results/model/generator.pt",
        prepared=prepared_dir(TRAINING_INPUT, "{period}"),
    output:
        directory("results/nearside/{period}"),
    log:
        "logs/predict/nearside/{period}.log",
    params:
        device=INFER_DEVICE,
        ensemble=ensemble_args(),
    group:
        "infer"
    threads: 1
    resources:
        gpu=INFER_GPUS,
        mem_mb=16000 if INFER_GPUS else 4000,
        runtime=30,
    conda:
        GPU_CONDA_ENV
    shell:
        "python -m farside_gan predict --checkpoint {input.generator:q}"
        " --prepared {input.prepared:q} --out-dir {output:q} --device {params.device:q}"
        " {params.ensemble} > {log:q} 2>&1"


use rule predict_nearside as predict_farside with:
    input:
        generator="results/model/generator.pt",
        prepared=lambda wildcards: prepared_dir(SPACECRAFT[wildcards.spacecraft], wildcards.period),
    output:
        directory("results/farside/{spacecraft}/{period}"),
    log:
        "logs/predict/{spacecraft}/{period}.log",
