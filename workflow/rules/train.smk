# Train the Pix2PixHD GAN on the manifest's training split. One GPU: plain process; more than
# one (training.gpus > 1): torchrun, one process per GPU on one host (DDP).


rule train:
    input:
        manifest="data/manifest.csv",
    output:
        generator="results/model/generator.pt",
        checkpoint="results/model/checkpoints/latest.pt",
        losses=report("results/model/losses.csv", category="Training",
                      caption="../report/losses.rst"),
    log:
        "logs/train.log",
    benchmark:
        "benchmarks/out/train.tsv"
    params:
        out_dir=lambda wildcards, output: str(Path(output.generator).parent),
        launcher=train_launcher,
        settings=train_settings(),
        device=config["training"]["device"],
    threads: max(2, 4 * GPUS)
    resources:
        gpu=GPUS,  # the SLURM plugin asks for --gpus=<gpu> (model: set gpu_model in the profile)
        mem_mb=32000 if GPUS else 4000,
        runtime=2880 if GPUS else 120,
    conda:
        "../../envs/farside-gan-gpu.yaml"
    shell:
        "{params.launcher} train --manifest {input.manifest} --out-dir {params.out_dir}"
        " --device {params.device} {params.settings} > {log} 2>&1"
