"""The conda environment files agree with pyproject.toml (conda channels are unreachable here, so
the files cannot be built in CI; this keeps them from drifting)."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from helpers.workflow import REPO
from packaging.requirements import Requirement

# PyPI name -> conda-forge name where they differ. torch is special: the rule envs pick a build.
CONDA_NAME = {"torch": "pytorch", "matplotlib": "matplotlib-base"}
TORCH_BUILDS = {"envs/farside-gan.yaml": "pytorch-cpu", "envs/farside-gan-gpu.yaml": "pytorch-gpu",
                "environment.yml": "pytorch-cpu"}
ENV_FILES = ("envs/farside-gan.yaml", "envs/farside-gan-gpu.yaml", "environment.yml")


def pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def conda_specs(path) -> dict[str, str]:
    """{name: version spec} of an environment file's conda dependencies (pip section ignored)."""
    deps = yaml.safe_load((REPO / path).read_text())["dependencies"]
    specs = {}
    for dep in deps:
        if isinstance(dep, dict):
            continue
        name, _, spec = dep.partition(" ")
        specs[name] = spec.strip()
    return specs


def expected_specs(path, requirements) -> dict[str, str]:
    expected = {}
    for text in requirements:
        req = Requirement(text)
        name = CONDA_NAME.get(req.name, req.name)
        if req.name == "torch":
            name = TORCH_BUILDS[path]
        expected[name] = str(req.specifier)
    return expected


@pytest.mark.parametrize("path", ENV_FILES)
def test_env_has_every_runtime_dependency_with_pyproject_bounds(path):
    specs = conda_specs(path)
    for name, spec in expected_specs(path, pyproject()["dependencies"]).items():
        assert name in specs, f"{path} lacks {name} (pyproject: {spec})"
        assert specs[name] == spec, f"{path}: {name} {specs[name]!r} but pyproject says {spec!r}"
    python = pyproject()["requires-python"]
    assert specs["python"] == python


@pytest.mark.parametrize("path", ENV_FILES)
def test_env_has_nothing_pyproject_does_not_name(path):
    project = pyproject()
    requirements = list(project["dependencies"])
    if path == "environment.yml":
        requirements += project["optional-dependencies"]["workflow"]
        requirements += project["optional-dependencies"]["test"]
    allowed = set(expected_specs(path, requirements)) | {"python", "pip"}
    extra = set(conda_specs(path)) - allowed
    assert not extra, f"{path} has packages pyproject.toml does not: {sorted(extra)}"


def test_environment_yml_has_workflow_and_test_extras():
    specs = conda_specs("environment.yml")
    extras = pyproject()["optional-dependencies"]
    for name, spec in expected_specs("environment.yml", extras["workflow"] + extras["test"]).items():
        assert specs.get(name) == spec, f"environment.yml: {name} should be {spec}"
    assert yaml.safe_load((REPO / "environment.yml").read_text())["name"] == "farside-gan"


def rule_envs() -> dict[str, str]:
    """{rule: env file relative to the repo} from the conda: directives of workflow/rules (a
    path, or a name the rules' files assign one to); `use rule A as B` gives B A's env."""
    texts = {smk: smk.read_text() for smk in (REPO / "workflow/rules").glob("*.smk")}
    names = dict(re.findall(r'^(\w+) = "([^"]+\.yaml)"', "\n".join(texts.values()), re.M))
    envs = {}
    for smk, text in texts.items():
        for m in re.finditer(r"^(?:rule|checkpoint) (\w+):.*?^\s+conda:\s*\n\s+(\"[^\"]+\"|\w+)",
                             text, re.S | re.M):
            path = m.group(2).strip('"') if m.group(2).startswith('"') else names[m.group(2)]
            envs[m.group(1)] = str((smk.parent / path).resolve().relative_to(REPO))
    for text in texts.values():
        for base, rule in re.findall(r"^use rule (\w+) as (\w+) with:", text, re.M):
            envs[rule] = envs[base]
    return envs


def test_every_rule_names_an_env_in_envs():
    envs = rule_envs()
    rules = set()
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        rules |= set(re.findall(r"^(?:rule|checkpoint|use rule \w+ as) (\w+)", smk.read_text(),
                                re.M))
    assert rules and set(envs) == rules
    for rule, env in envs.items():
        assert (REPO / env).is_file(), f"rule {rule}: {env} missing"
    # the GPU rules get the CUDA build, the others the CPU one
    gpu_rules = {"train", "predict_nearside", "predict_farside"}
    assert {r for r, e in envs.items() if e == "envs/farside-gan-gpu.yaml"} == gpu_rules
    assert set(envs.values()) == {"envs/farside-gan.yaml", "envs/farside-gan-gpu.yaml"}
