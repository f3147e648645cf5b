# Dataset: every training time (ok or dropped, with the stage and reason), AIA/HMI pairs, and
# the seeded train/eval split by month, from the prepared AIA and HMI periods.


rule manifest:
    input:
        prepared=prepared_dirs(TRAINING_INPUT) + prepared_dirs(TRAINING_TARGET),
    output:
        "data/manifest.csv",
    log:
        "logs/manifest.log",
    params:
        split=config["dataset"],  # compared by Snakemake: a changed pairing or split reruns it
        commands=manifest_commands,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/farside-gan.yaml"
    script:
        # in-process: the directory lists are long
        "../scripts/farside_gan_cli.py"
