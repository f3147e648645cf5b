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

import math

from farside_gan.config.schedule import Schedule
from farside_gan.config.workflow import source_of, train_config
from farside_gan.core.instruments import (CHANNELS, FARSIDE_INPUTS, INSTRUMENTS, TRAINING_INPUT,
                                          TRAINING_TARGET)

FITS_BLOCK = 2880
HEADER_BLOCKS = 8           # a level-1 header: ~250 cards of 80 bytes


def fits_bytes(data_bytes: int, header_blocks: int = HEADER_BLOCKS) -> int:
    """Size of a one-HDU FITS file: header blocks plus the data padded to 2880 bytes."""
    return header_blocks * FITS_BLOCK + math.ceil(data_bytes / FITS_BLOCK) * FITS_BLOCK


def _model_bytes(config: dict) -> tuple[int, int]:
    """(generator.pt, one training checkpoint) in bytes, from the configured networks."""
    import torch

    from farside_gan.model.checkpoint import build_networks

    with torch.device("meta"):
        G, D = build_networks(train_config(config))
    n_g = sum(p.numel() for p in G.parameters())
    n_d = sum(p.numel() for p in D.parameters())
    return 4 * n_g, 4 * 3 * (n_g + n_d)  # checkpoint: weights + Adam's exp_avg, exp_avg_sq


def plan_fetch(config: dict) -> dict:
    """Frames, fetch jobs, export requests and bytes of a validated configuration (see the
    module doc; ``farside_gan.config.workflow.load_config``)."""
    schedule = Schedule(config)
    size = int(config["image"]["size"])
    plane = fits_bytes(4 * size * size)
    stack = fits_bytes(4 * 3 * size * size)
    instruments = {}
    for instrument in schedule.instruments:
        ts = schedule.times(instrument)
        farside = instrument in FARSIDE_INPUTS  # synthetic.euvi_size
        source = source_of(config, instrument)
        n_channels = len(CHANNELS[instrument])
        frames = len(ts) * n_channels
        periods = schedule.periods(instrument)
        if source == "jsoc":
            # one export per instrument and month within each fetch job (a day job: one per day;
            # a time key's first 6 characters are its month)
            exports = len({max(schedule.period_of(t), t[:6], key=len) for t in ts})
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
    epochs, keep_every = config["training"]["epochs"], config["training"]["keep_every_epochs"]
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
    return {"image_size": size, "batch": schedule.batch, "instruments": instruments, "final": final,
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
