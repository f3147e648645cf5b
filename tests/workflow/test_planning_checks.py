"""Settings the schema lets through but the data cannot have are refused while planning: an
EUV clip that is not increasing, a solar disk larger than the image."""

from __future__ import annotations

import json


def test_workflow_refuses_unordered_clip_and_an_oversized_disk(tmp_path):
    from helpers.workflow import DEMO_CONFIG, run_snakemake
    for name, section in (("clip", {"normalize": {"euv_clip": [200, 1]}}),
                          ("disk", {"image": {"size": 64, "rsun_px": 40}})):
        bad = tmp_path / f"{name}.yaml"
        bad.write_text(json.dumps(section))
        (tmp_path / name).mkdir()
        proc = run_snakemake(tmp_path / name, "-n", configfiles=[DEMO_CONFIG, bad], check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert ("euv_clip [200, 1] must be increasing" if name == "clip"
                else "rsun_px 40 puts the solar disk outside the 64 px image") in output
