# Download: one job per instrument and period (fetch.batch: month, day or time) fetches every
# channel and time of the period. Each frame gets <channel>/<time>/record.json (ok, or dropped
# with the reason) and frame.fits when usable; the period's records.json gathers them for
# `prepare`. Only the index is the job's output: the frames stay when a rerun (a changed time
# grid) redoes the period.


rule synth_archive:
    output:
        directory("data/archive"),
    log:
        "logs/synth_archive.log",
    params:
        # what the archive holds (a change reruns the job: the commands below are built only
        # when it runs, so Snakemake cannot compare them)
        holds=synthetic_archive_spec(),
        # one synth-archive call per instrument group, at the times the workflow asks for
        commands=synthetic_archive_commands,
    threads: local_cores(default=2)
    resources:
        mem_mb=lambda wildcards, threads: 2000 + 1000 * threads,
        runtime=60,
    conda:
        "../../envs/farside-gan.yaml"
    script:
        "../scripts/farside_gan_cli.py"


rule calibration_tables:
    output:
        directory("data/calibration"),
    log:
        "logs/calibration_tables.log",
    params:
        offline="--offline-demo" if SYNTHETIC else "",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    conda:
        "../../envs/farside-gan.yaml"
    shell:
        "python -m farside_gan calibration-tables {output} {params.offline} > {log} 2>&1"


rule fetch:
    input:
        archive=archive_input,
    output:
        "data/raw/{instrument}/{period}/records.json",
    log:
        "logs/fetch/{instrument}/{period}.log",
    benchmark:
        "benchmarks/out/fetch/{instrument}/{period}.tsv"
    params:
        # what is fetched: a changed grid, source or tolerance reruns the period (the frames it
        # has are kept); compared by Snakemake, unlike the commands built when the job runs
        request=fetch_request,
        commands=fetch_commands,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
        downloads=1,  # cap parallel download jobs with --resources downloads=N
    conda:
        "../../envs/farside-gan.yaml"
    script:
        # one process for the whole batch: fetch writes <channel>/<time>/record.json (+ frame.fits)
        "../scripts/farside_gan_cli.py"
