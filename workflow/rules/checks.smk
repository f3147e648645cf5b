# Checks of how the workflow is run, each failing with what to do: --use-conda without conda
# (while planning), a JSOC fetch without an e-mail address (before any job starts; a dry run
# still plans it).

import shutil

from farside_gan.config.workflow import source_of


def check_conda():
    """--use-conda without conda: say what is missing and the ways on (Snakemake would say
    only that `conda info` failed)."""
    from snakemake.settings.types import DeploymentMethod

    methods = getattr(workflow.deployment_settings, "deployment_method", None) or ()
    if DeploymentMethod.CONDA not in methods or DeploymentMethod.APPTAINER in methods:
        return
    if shutil.which("conda") is None:
        raise WorkflowError(
            "--use-conda (--sdm conda) needs the `conda` command (conda >= 24.7.1, e.g. from "
            "Miniforge: https://conda-forge.org/download/; mamba is used as well with "
            "--conda-frontend mamba, but Snakemake runs `conda` itself), and there is none on "
            "PATH. Install it, or run without --use-conda in an environment that has "
            "farside-gan's dependencies: pip install -e '.[workflow]' (README, Quick start) or "
            "conda env create -f environment.yml.")


check_conda()


def check_jsoc_email():
    """Stop before any job starts when a fetch from JSOC would run without fetch.jsoc_email."""
    if config["fetch"]["jsoc_email"]:
        return
    jsoc = sorted(f"{job.wildcards.instrument}/{job.wildcards.period}"
                  for job in workflow.dag.needrun_jobs()
                  if job.rule.name == "fetch"
                  and source_of(config, job.wildcards.instrument) == "jsoc")
    if jsoc:
        raise WorkflowError(
            f"fetch.jsoc_email is empty, but {len(jsoc)} fetch job(s) download from JSOC "
            f"({', '.join(jsoc[:3])}{', ...' if len(jsoc) > 3 else ''}; fetch.source: jsoc), "
            "which exports only to a registered e-mail address "
            "(http://jsoc.stanford.edu/ajax/register_email.html). Set it in a config file "
            "given after the others, e.g.\n"
            "  printf 'fetch:\\n  jsoc_email: you@example.org\\n' > site.yaml\n"
            "  snakemake ... --configfile config/config.yaml site.yaml\n"
            "Nothing was fetched.")
