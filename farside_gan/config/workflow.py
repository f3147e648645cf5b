"""The workflow's configuration, read and checked one way for the Snakefile and ``farside-gan
plan``.

* :func:`read_config` merges YAML files in order: a later file overrides the keys it names and
  nested sections merge, as Snakemake merges ``--configfile`` files over the Snakefile's
  ``configfile:``;
* :func:`validate_config` checks a configuration against the schema shipped in this package
  (``schema.yaml``, which the workflow links as ``workflow/schemas/config.schema.yaml``), fills
  in its defaults for keys left out, and refuses what a JSON schema cannot say: values that
  must agree with each other (:func:`check_config`);
* :func:`load_config` does both.

Every refusal is a :class:`ConfigError` naming the key and the problem.
"""

from __future__ import annotations

import copy

from farside_gan.config.schedule import Schedule
from farside_gan.config.training import WORKFLOW_KEYS, TrainConfig
from farside_gan.core.documents import read_yaml_mapping
from farside_gan.core.errors import FarsideError, InputDataError
from farside_gan.core.header_checks import check_image_size_for_generator
from farside_gan.core.instruments import FARSIDE_INPUTS, parse_time

SCHEMA_FILE = "schema.yaml"
#: fetch sources that read an archive laid out like the real ones (``fetch.archive``)
ARCHIVE_SOURCES = ("local", "http")


class ConfigError(FarsideError):
    """A configuration the workflow refuses; ``key`` is the key at fault (dotted), ``message``
    says what is wrong with it, ``source`` where the configuration came from."""

    def __init__(self, key: str, message: str, source: str = "config"):
        self.key, self.message, self.source = key, message, source
        super().__init__(f"{source}: {message}")


def schema() -> dict:
    """The configuration's JSON schema (package data: found in an installed package too)."""
    from importlib.resources import files

    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, where PyYAML has it
    return yaml.load(files(__package__).joinpath(SCHEMA_FILE).read_text(), Loader=loader)


def merge(base: dict, over: dict) -> dict:
    """``over`` merged into ``base`` (in place): nested sections merge, other values replace."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def read_config(paths) -> dict:
    """The YAML files merged in order (a later file overrides the keys it names); a file that
    is not a YAML mapping (unreadable, an HTML page, a list) is refused by name."""
    config = {}
    for path in paths:
        try:
            merge(config, read_yaml_mapping(path, "a configuration"))
        except InputDataError as exc:  # a refusal of the configuration, as every other
            raise ConfigError("(file)", exc.problem, str(path)) from None
    return config


def load_config(paths) -> dict:
    """The files merged in order (:func:`read_config`) and validated (:func:`validate_config`);
    a refusal names the files."""
    paths = [str(p) for p in paths]
    return validate_config(read_config(paths), source=", ".join(paths))


def validate_config(config: dict, source: str = "config") -> dict:
    """Check ``config`` against the schema, fill in the schema's defaults (in place) and check
    what the schema cannot (:func:`check_config`); returns ``config``."""
    import jsonschema

    spec = schema()
    validator = jsonschema.validators.validator_for(spec)(spec)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required":  # the missing key, not the object that lacks it
            path += [k for k in error.validator_value if k not in error.instance][:1]
        key = ".".join(path) or "(top level)"
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(key, f"{where}: {error.message}", source)
    _fill_defaults(config, spec)
    check_config(config, source)
    return config


def _fill_defaults(value: dict, spec: dict) -> None:
    for key, sub in spec.get("properties", {}).items():
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if isinstance(value.get(key), dict) and sub.get("type") == "object":
            _fill_defaults(value[key], sub)


def check_config(config: dict, source: str = "config") -> None:
    """Refuse what a JSON schema cannot say (it compares no two values) in a configuration the
    schema accepted, with its defaults filled in."""
    for key, message in _cross_field_problems(config):
        raise ConfigError(key, message, source)


def _cross_field_problems(config: dict):
    """(key, message) of each problem, in the order the workflow meets them."""
    clip = config["normalize"]["euv_clip"]
    if not clip[0] < clip[1]:
        yield ("normalize.euv_clip", f"normalize.euv_clip {clip} must be increasing (low, high); "
               "e.g. [1, 200]")
    image = config["image"]
    if not image["rsun_px"] <= image["size"] / 2:
        yield ("image.rsun_px", f"image.rsun_px {image['rsun_px']} puts the solar disk outside "
               f"the {image['size']} px image (at most size / 2)")
    spans = [("", config)] + [(f"farside.spacecraft.{name}.", span)
                              for name, span in config["farside"]["spacecraft"].items()]
    for prefix, span in spans:
        if parse_time(span["end"]) < parse_time(span["start"]):
            yield (f"{prefix}end", f"{prefix}end {span['end']} is before {prefix}start "
                   f"{span['start']}")
    fetch = config["fetch"]
    for instrument in Schedule(config).instruments:
        source = source_of(config, instrument)
        if source in ARCHIVE_SOURCES and not fetch["archive"]:
            yield ("fetch.archive", f"fetch.archive must name the archive for source {source}")
            break
    try:
        model = train_config(config)
    except (TypeError, ValueError) as exc:
        yield ("model/training", f"model/training: {exc}")
    else:
        try:  # the size every job from align on makes: refused before any of them runs
            check_image_size_for_generator(image["size"], model.n_downsample)
        except ValueError as exc:
            yield ("image.size", f"image.size does not fit the generator (model.n_downsample "
                   f"{model.n_downsample}): {exc}")
    yield from _ensemble_problems(config)


def _ensemble_problems(config: dict):
    """An ensemble of N needs N - 1 checkpoints kept before the last epoch, and its calibration
    near-side maps of an evaluation month: said while planning, not after training."""
    members = config["synchronic"]["ensemble_members"]
    if not members:
        return
    training = config["training"]
    keep, epochs = training["keep_every_epochs"], training["epochs"]
    kept = (epochs - 1) // keep if keep and epochs > 0 else 0
    if kept < members - 1:
        yield ("synchronic.ensemble_members",
               f"synchronic.ensemble_members {members} needs {members - 1} checkpoints kept "
               f"before the last epoch, but training keeps {kept} (training.epochs {epochs}, "
               f"training.keep_every_epochs {keep}); keep more (a smaller keep_every_epochs) or "
               "ask for fewer members")
    if config["synchronic"]["calibrate_uncertainty"] and not Schedule(config).eval_periods:
        yield ("synchronic.calibrate_uncertainty",
               "synchronic.calibrate_uncertainty needs near-side maps of an evaluation month to "
               "calibrate against HMI, and this configuration has none (start/end and "
               "dataset.eval_months); set it to false")


def config_warnings(config: dict) -> list[str]:
    """What a validated configuration may run with but not for real (said while planning)."""
    fetch = config["fetch"]
    if "jsoc" in (fetch["source"], fetch["euvi_source"]) and not fetch["jsoc_email"]:
        return ["config: fetch.jsoc_email is empty, but JSOC exports need a registered address "
                "(http://jsoc.stanford.edu/ajax/register_email.html); set it before running for "
                "real, e.g. in a site.yaml given after the config: --configfile "
                "config/config.yaml site.yaml"]
    return []


def source_of(config: dict, instrument: str) -> str:
    """Where the instrument's frames come from: jsoc, fido, local or http (``fetch.source``;
    ``fetch.euvi_source`` for STEREO/EUVI)."""
    return config["fetch"]["euvi_source" if instrument in FARSIDE_INPUTS else "source"]


def fetch_source(config: dict, instrument: str) -> str:
    """``fetch-period --source`` for the instrument: jsoc, fido, or the archive (``fetch.archive``,
    a directory or URL) for local/http."""
    source = source_of(config, instrument)
    return config["fetch"]["archive"] if source in ARCHIVE_SOURCES else source


def train_values(config: dict) -> dict:
    """What ``farside-gan train`` is given: the ``model:`` and ``training:`` keys but the
    workflow's own (``WORKFLOW_KEYS``)."""
    return {k: v for section in ("model", "training") for k, v in config[section].items()
            if k not in WORKFLOW_KEYS}


def train_config(config: dict) -> TrainConfig:
    """The :class:`TrainConfig` of a configuration (its own checks raise ValueError)."""
    return TrainConfig.from_dict(train_values(config))
