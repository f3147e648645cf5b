"""The bill before paying it: what a workflow configuration will fetch and store.

``plan_fetch(config)`` counts, from the configuration alone (nothing is fetched), the frames
per instrument, the fetch jobs and export requests, the bytes to download and the disk the run
needs for raw, intermediate and final data. Sizes are computed from the data formats:

* raw frames: the archives' image formats, uncompressed (AIA level 1 4096^2 int16, HMI
  ``hmi.M_720s`` 4096^2 int32, SECCHI/EUVI level 0.5 2048^2 int16; a synthetic archive's
  ``synthetic.size``) plus the FITS header. JSOC
  exports FITS tile-compressed, so what arrives is usually a fraction of this bound (the
  fraction depends on the image and was not measured here: no archive is reachable);
* intermediate (``data/prepared/<instrument>/<period>/``): aligned frames, float32
  ``image.size``^2 per channel; the 3-channel EUV stacks (AIA, EUVI); the normalized HMI targets;
* final: the generator and the training checkpoints (float32 weights, Adam's two moments per
  weight), the farside maps and the near-side maps of the evaluation months (float32
  ``image.size``^2 each).
"""

from __future__ import annotations

import copy
import math
from datetime import datetime, timedelta
from pathlib import Path

from farside_gan.core.documents import read_yaml_mapping
from farside_gan.core.errors import FarsideError
from farside_gan.core.instruments import (CHANNELS, FARSIDE_INPUTS, INSTRUMENTS, TRAINING_INPUT,
                                          TRAINING_TARGET)

FITS_BLOCK = 2880
HEADER_BLOCKS = 8           # a level-1 header: ~250 cards of 80 bytes
SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"


def fits_bytes(data_bytes: int, header_blocks: int = HEADER_BLOCKS) -> int:
    """Size of a one-HDU FITS file: header blocks plus the data padded to 2880 bytes."""
    return header_blocks * FITS_BLOCK + math.ceil(data_bytes / FITS_BLOCK) * FITS_BLOCK


def _fill_defaults(value: dict, schema: dict) -> dict:
    for key, sub in schema.get("properties", {}).items():
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if isinstance(value.get(key), dict) and sub.get("type") == "object":
            _fill_defaults(value[key], sub)
    return value


def _merge(base: dict, over: dict) -> dict:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


class ConfigError(FarsideError):
    """A configuration the schema refuses."""


def load_config(paths, schema_path=SCHEMA) -> dict:
    """Merge config YAML files (later ones override, nested sections merge, as Snakemake does),
    validate them against the schema and fill in its defaults."""
    import jsonschema
    import yaml

    config = {}
    for path in paths:
        _merge(config, read_yaml_mapping(path, "a configuration"))
    schema = yaml.safe_load(Path(schema_path).read_text())
    try:
        jsonschema.validate(config, schema)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ConfigError(f"{', '.join(map(str, paths))}: {where}: {exc.message}") from exc
    return _fill_defaults(config, schema)


def time_grid(start: str, end: str, hours: float) -> list[datetime]:
    t, stop, step = datetime.fromisoformat(start), datetime.fromisoformat(end), timedelta(hours=hours)
    out = []
    while t <= stop:
        out.append(t)
        t += step
    return out


def _period_key(t: datetime, batch: str) -> str:
    return {"month": f"{t:%Y%m}", "day": f"{t:%Y%m%d}", "time": f"{t:%Y%m%dT%H%M}"}[batch]


def _model_bytes(config: dict) -> tuple[int, int]:
    """(generator.pt, one training checkpoint) in bytes, from the configured networks."""
    import torch

    from farside_gan.config.training import WORKFLOW_KEYS, TrainConfig
    from farside_gan.model.checkpoint import build_networks

    settings = {**config.get("model", {}), **config.get("training", {})}
    train = TrainConfig.from_dict({k: v for k, v in settings.items() if k not in WORKFLOW_KEYS})
    with torch.device("meta"):
        G, D = build_networks(train)
    n_g = sum(p.numel() for p in G.parameters())
    n_d = sum(p.numel() for p in D.parameters())
    return 4 * n_g, 4 * 3 * (n_g + n_d)  # checkpoint: weights + Adam's exp_avg, exp_avg_sq


def plan_fetch(config: dict) -> dict:
    """Frames, fetch jobs, export requests and bytes of a configuration (see the module doc)."""
    fetch = config["fetch"]
    size = int(config["image"]["size"])
    plane = fits_bytes(4 * size * size)
    stack = fits_bytes(4 * 3 * size * size)
    times = {i: time_grid(config["start"], config["end"], config["cadence_hours"])
             for i in (TRAINING_INPUT, TRAINING_TARGET)}
    for instrument in FARSIDE_INPUTS:
        rng = config["farside"]["spacecraft"].get(instrument)
        if rng:
            times[instrument] = time_grid(rng["start"], rng["end"], config["farside"]["cadence_hours"])
    instruments = {}
    for instrument, ts in times.items():
        farside = instrument in FARSIDE_INPUTS  # config: fetch.euvi_source, synthetic.euvi_size
        source = fetch["euvi_source" if farside else "source"]
        n_channels = len(CHANNELS[instrument])
        frames = len(ts) * n_channels
        periods = {_period_key(t, fetch["batch"]) for t in ts}
        if source == "jsoc":
            # one export per instrument and month within each fetch job (a day job: one per day)
            exports = len({max(_period_key(t, fetch["batch"]), f"{t:%Y%m}", key=len) for t in ts})
        elif source == "fido" and INSTRUMENTS[instrument].jsoc_segment:
            exports = frames  # sunpy's JSOC client stages each chosen record on its own
        else:
            exports = 0
        pixels, depth = INSTRUMENTS[instrument].raw_format
        if config["synthetic"]["enabled"]:  # the demo's synthetic archive: smaller images
            side = config["synthetic"]["euvi_size" if farside else "size"]
            pixels = side * side
        prepared_per_time = n_channels * plane + (plane if instrument == TRAINING_TARGET else stack)
        instruments[instrument] = {
            "times": len(ts), "channels": n_channels, "frames": frames, "source": source,
            "fetch_jobs": len(periods), "export_requests": exports,
            "raw_bytes": frames * fits_bytes(pixels * depth),
            "prepared_bytes": len(ts) * prepared_per_time,
        }
    generator, checkpoint = _model_bytes(config)
    training = config.get("training", {})
    epochs = int(training.get("epochs", 150))
    keep_every = int(training.get("keep_every_epochs", 10))
    kept = epochs // keep_every if keep_every else 0
    eval_fraction = int(config["dataset"]["eval_months"]) / 12
    farside_maps = sum(instruments[i]["times"] for i in FARSIDE_INPUTS if i in instruments)
    nearside_maps = math.ceil(instruments[TRAINING_INPUT]["times"] * eval_fraction)
    final = {"generator_bytes": generator, "checkpoint_bytes": checkpoint,
             "checkpoints_kept": 1 + kept, "farside_maps": farside_maps,
             "nearside_maps_at_most": nearside_maps,
             "maps_bytes": (farside_maps + nearside_maps) * plane}
    final["total_bytes"] = generator + checkpoint * (1 + kept) + final["maps_bytes"]
    totals = {
        "frames": sum(i["frames"] for i in instruments.values()),
        "fetch_jobs": sum(i["fetch_jobs"] for i in instruments.values()),
        "export_requests": sum(i["export_requests"] for i in instruments.values()),
        "raw_bytes": sum(i["raw_bytes"] for i in instruments.values()),
        "prepared_bytes": sum(i["prepared_bytes"] for i in instruments.values()),
        "final_bytes": final["total_bytes"],
    }
    totals["disk_bytes"] = totals["raw_bytes"] + totals["prepared_bytes"] + totals["final_bytes"]
    return {"image_size": size, "batch": fetch["batch"], "instruments": instruments, "final": final,
            "totals": totals}


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB"


def format_plan(plan: dict) -> str:
    """The plan as a table (GB = 1e9 bytes)."""
    lines = [f"{'instrument':<10} {'source':<6} {'times':>6} {'frames':>7} {'jobs':>5} {'exports':>7} "
             f"{'raw (bound)':>13} {'prepared':>11}"]
    for name, i in plan["instruments"].items():
        lines.append(f"{name:<10} {i['source']:<6} {i['times']:>6} {i['frames']:>7} {i['fetch_jobs']:>5} "
                     f"{i['export_requests']:>7} {_gb(i['raw_bytes']):>13} {_gb(i['prepared_bytes']):>11}")
    t, f = plan["totals"], plan["final"]
    lines += [
        f"{'total':<17} {'':>6} {t['frames']:>7} {t['fetch_jobs']:>5} {t['export_requests']:>7} "
        f"{_gb(t['raw_bytes']):>13} {_gb(t['prepared_bytes']):>11}",
        "",
        f"raw frames: {_gb(t['raw_bytes'])} at most (uncompressed image formats; JSOC's tile-compressed "
        "FITS are smaller)",
        f"intermediate (data/prepared, {plan['image_size']} px float32): {_gb(t['prepared_bytes'])}",
        f"final: {_gb(f['total_bytes'])} (generator {_gb(f['generator_bytes'])}, "
        f"{f['checkpoints_kept']} checkpoints of {_gb(f['checkpoint_bytes'])}, "
        f"{f['farside_maps']} farside + <= {f['nearside_maps_at_most']} near-side maps {_gb(f['maps_bytes'])})",
        f"disk for the whole run: {_gb(t['disk_bytes'])} at most",
    ]
    return "\n".join(lines)
