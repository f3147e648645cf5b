# Dataset: stack the three EUV channels of one time into a (3, N, N) sample, then the manifest:
# every training time (ok or dropped, with the reason), AIA/HMI pairs and the seeded
# train/eval split by month. The manifest is a checkpoint: evaluation reads its eval split.


rule stack:
    input:
        lambda wildcards: [
            f"data/normalized/{wildcards.instrument}/{ch}/{wildcards.time}.fits"
            for ch in CHANNELS[wildcards.instrument]
        ],
    output:
        "data/stacks/{instrument}/{time}.fits",
    log:
        "logs/stack/{instrument}/{time}.log",
    wildcard_constraints:
        instrument="aia|euvi_a|euvi_b",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/farside-gan.yaml"
    shell:
        # channel order (304, 193|195, 171) comes from CHANNELS
        "python -m farside_gan stack {output} {input} > {log} 2>&1"


checkpoint manifest:
    input:
        unpack(training_pairs),
        records=training_record_dirs(),
    output:
        "data/manifest.csv",
    log:
        "logs/manifest.log",
    params:
        commands=manifest_commands,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/farside-gan.yaml"
    script:
        # in-process: the file lists are too long for a shell command line
        "../scripts/farside_gan_cli.py"
