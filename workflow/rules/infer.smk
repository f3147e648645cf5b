# Inference: the trained generator on AIA stacks of the evaluation split (near side, where HMI
# gives the truth) and on STEREO/EUVI stacks (far side). One job per map so that -R and
# incremental runs work per map; on a cluster the `infer` group bundles them into few jobs.

INFER_GPUS = min(GPUS, 1)


rule predict_nearside:
    input:
        generator="results/model/generator.pt",
        stack="data/stacks/aia/{time}.fits",
    output:
        "results/nearside/{time}.fits",
    log:
        "logs/predict/nearside/{time}.log",
    params:
        device="cpu" if config["training"]["device"] == "cpu" else "auto",
    group:
        "infer"
    threads: 1
    resources:
        gpu=INFER_GPUS,
        mem_mb=16000 if INFER_GPUS else 4000,
        runtime=10,
    conda:
        "../../envs/farside-gan-gpu.yaml"
    shell:
        "python -m farside_gan predict --checkpoint {input.generator} --output {output}"
        " --device {params.device} {input.stack} > {log} 2>&1"


rule predict_farside:
    input:
        generator="results/model/generator.pt",
        stack=lambda wildcards: f"data/stacks/{SPACECRAFT[wildcards.spacecraft]}/{wildcards.time}.fits",
    output:
        "results/farside/{spacecraft}/{time}.fits",
    log:
        "logs/predict/{spacecraft}/{time}.log",
    params:
        device="cpu" if config["training"]["device"] == "cpu" else "auto",
    group:
        "infer"
    threads: 1
    resources:
        gpu=INFER_GPUS,
        mem_mb=16000 if INFER_GPUS else 4000,
        runtime=10,
    conda:
        "../../envs/farside-gan-gpu.yaml"
    shell:
        "python -m farside_gan predict --checkpoint {input.generator} --output {output}"
        " --device {params.device} {input.stack} > {log} 2>&1"
