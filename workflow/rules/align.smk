# Align: one resampling to the centred frame (disk radius image.rsun_px in an image.size square),
# north up, beyond image.mask_radius Rsun set to image.fill; full WCS/observer header.


rule align:
    input:
        "data/calibrated/{instrument}/{channel}/{time}.fits",
    output:
        "data/aligned/{instrument}/{channel}/{time}.fits",
    log:
        "logs/align/{instrument}/{channel}/{time}.log",
    params:
        size=config["image"]["size"],
        rsun_px=config["image"]["rsun_px"],
        mask_radius=config["image"]["mask_radius"],
        fill=config["image"]["fill"],
    group:
        "prepare"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../envs/farside-gan.yaml"
    shell:
        "python -m farside_gan align {input} {output} --size {params.size} --rsun-px {params.rsun_px}"
        " --mask-radius {params.mask_radius} --fill {params.fill} > {log} 2>&1"
