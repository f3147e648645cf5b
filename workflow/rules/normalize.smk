# Normalize: EUV by the on-disk median (x euv_median), clip, log10, to [-1, 1]; HMI clipped to
# +-hmi_clip G and divided by it.


rule normalize:
    input:
        "data/aligned/{instrument}/{channel}/{time}.fits",
    output:
        "data/normalized/{instrument}/{channel}/{time}.fits",
    log:
        "logs/normalize/{instrument}/{channel}/{time}.log",
    params:
        euv_median=config["normalize"]["euv_median"],
        euv_clip=" ".join(str(v) for v in config["normalize"]["euv_clip"]),
        hmi_clip=config["normalize"]["hmi_clip"],
    group:
        "prepare"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/farside-gan.yaml"
    shell:
        "python -m farside_gan normalize {input} {output} --euv-median {params.euv_median}"
        " --euv-clip {params.euv_clip} --hmi-clip {params.hmi_clip} > {log} 2>&1"
