"""The truth file's sign-blind ceiling (``CEILING``) and region table (``REGIONS``), from the
synthetic Sun's own region list (farside_gan.synthetic.truth, .regions, .field)."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest
from astropy.io import fits
from helpers.model import stack_header

from farside_gan.cli import main
from farside_gan.core.fitsio import write_fits
from farside_gan.synthetic.solar_cycle import hale_leading_sign, solar_cycle
from farside_gan.synthetic import SyntheticSun
from farside_gan.synthetic.field import days_since_epoch
from farside_gan.synthetic.truth import truth_map, write_truth

SIZE = 128
#: A large anti-Hale region (0:171:6, 3.7e23 Mx) sits at disk centre seen from Earth.
ANTI_HALE_TIME = "2012-09-08T00:00:00"


def _stack(directory, time, instrument="aia"):
    header = stack_header(SIZE, time, instrument)
    name = f"{instrument}_{time[:10]}.fits"
    return write_fits(directory / name, np.zeros((3, SIZE, SIZE), np.float32), header)


@pytest.fixture(scope="module")
def truths(tmp_path_factory):
    """Truth files of the default Sun (seed 0) at the anti-Hale time, seen from Earth (aia)
    and from STEREO-A (105 deg west)."""
    d = tmp_path_factory.mktemp("truths")
    sun = SyntheticSun(seed=0)
    return sun, {inst: write_truth(sun, _stack(d, ANTI_HALE_TIME, inst), d / f"truth_{inst}.fits")
                 for inst in ("aia", "euvi_a")}


def test_ceiling_is_the_truth_on_a_sun_without_anti_hale_regions_network_or_holes(tmp_path):
    """Nothing a sign-blind model could not know: the ceiling is the truth, to float32
    rounding. With the default Sun the anti-Hale region breaks it (negative control)."""
    stack = _stack(tmp_path, ANTI_HALE_TIME)
    plain = SyntheticSun(seed=0, anti_hale_fraction=0.0, network_field=0.0, coronal_hole_rate=0.0)
    path = write_truth(plain, stack, tmp_path / "plain.fits")
    with fits.open(path) as hdul:
        truth, ceiling = hdul[0].data, hdul["CEILING"].data
        assert hdul["CEILING"].header["BUNIT"] == "Gauss"
    assert np.array_equal(np.isnan(truth), np.isnan(ceiling)) and np.isnan(truth).any()
    disk = np.isfinite(truth)
    assert np.abs(truth[disk]).max() > 1000  # the active regions are there
    # float32 rounding of kG fields: 1e-7 relative
    np.testing.assert_allclose(ceiling[disk], truth[disk], rtol=0,
                               atol=2e-7 * np.abs(truth[disk]).max())
    default = write_truth(SyntheticSun(seed=0), stack, tmp_path / "default.fits")
    truth, ceiling = fits.getdata(default, 0), fits.getdata(default, "CEILING")
    assert np.corrcoef(truth[disk], ceiling[disk])[0, 1] < 0  # the anti-Hale region dominates


def test_truth_file_keeps_the_truth_and_adds_the_extensions(truths, tmp_path):
    sun, paths = truths
    stack = _stack(tmp_path, ANTI_HALE_TIME)
    data, header = truth_map(sun, fits.getheader(stack), stack)
    with fits.open(paths["aia"]) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "CEILING", "REGIONS"]
        assert np.array_equal(hdul[0].data, data, equal_nan=True)
        for key in ("CRPIX1", "CDELT1", "HGLN_OBS", "DSUN_OBS", "R_SUN", "MASKRAD", "DATE-OBS"):
            assert hdul["CEILING"].header[key] == header[key]


def test_region_table_lists_the_regions_on_the_disk_from_the_suns_own_list(truths):
    sun, paths = truths
    time = datetime.fromisoformat(ANTI_HALE_TIME)
    regions = {f"0:{r.time_bin}:{r.index}": r for r in sun.active_regions(time)}
    day = days_since_epoch(sun.field_time(time))
    truth = fits.getdata(paths["aia"], 0)
    table = fits.getdata(paths["aia"], "REGIONS")
    assert 0 < len(table) < len(regions)  # the far hemisphere's are not listed
    assert len(set(table["REGION"])) == len(table)
    cycle = solar_cycle(time)[0]
    for row in table:
        region = regions[row["REGION"]]
        assert row["ANTIHALE"] == region.anti_hale and row["LEADSIGN"] == region.leading_sign
        hale = hale_leading_sign(cycle, region.hemisphere)
        assert row["LEADSIGN"] == (-hale if region.anti_hale else hale)
        # centred on the scored disk: mu at 0.98 Rsun is 0.2
        assert 0.19 < row["MU"] <= 1.0
        # flux: at most the sum of the blobs' |flux| (opposite plages overlap and cancel), and
        # within 30% of it (0.76-0.90 on this map)
        s = region.strength(day)
        blobs = (2 * region.peak_field * s * 2 * math.pi * region.sigma_leading ** 2
                 * (1 + 0.08 * 2.5 ** 2) * (math.radians(1) * 6.957e10) ** 2)
        assert 0.7 * blobs < row["FLUX"] <= blobs
    [big] = [r for r in table if r["REGION"] == "0:171:6"]
    assert big["ANTIHALE"] and big["MU"] > 0.9 and big["FLUX"] > 1e23
    # the polarity centres are where the truth has the polarities: each strong region away from
    # the limb has its leading sign at its leading centre and the other at its following one
    strong = [r for r in table if r["FLUX"] >= 3e22 and r["MU"] >= 0.5]
    assert len(strong) >= 5
    for r in strong:
        lead = truth[int(round(r["LEAD_Y"])), int(round(r["LEAD_X"]))]
        follow = truth[int(round(r["FOLL_Y"])), int(round(r["FOLL_X"]))]
        assert lead * r["LEADSIGN"] > 100 and follow * r["LEADSIGN"] < 0, r["REGION"]


def test_a_region_has_one_name_and_flux_for_every_observer(truths):
    _, paths = truths
    near, far = (fits.getdata(paths[i], "REGIONS") for i in ("aia", "euvi_a"))
    common = set(near["REGION"]) & set(far["REGION"])
    assert common and set(near["REGION"]) != set(far["REGION"])
    for name in common:
        [a], [b] = near[near["REGION"] == name], far[far["REGION"] == name]
        assert a["FLUX"] == b["FLUX"] and a["LEADSIGN"] == b["LEADSIGN"]
        assert a["MU"] != b["MU"]


def test_synth_truth_command_writes_the_extensions(synthetic_archive, tmp_path):
    """The truth rule's command, on a prepared period like the workflow's."""
    import json

    from farside_gan.core.instruments import TIME_KEY_FORMAT
    prepared = tmp_path / "prepared"
    stacks = prepared / "stacks"
    stacks.mkdir(parents=True)
    time = datetime(2011, 1, 1)
    stack = _stack(stacks, time.isoformat())
    key = time.strftime(TIME_KEY_FORMAT)
    (prepared / "records.json").write_text(json.dumps({"instrument": "aia", "times": [
        {"time": key, "status": "ok", "stack": str(stack.relative_to(prepared))}]}))
    assert main(["synth-truth", "--sun", str(synthetic_archive), "--prepared", str(prepared),
                 "--out-dir", str(tmp_path / "truth")]) == 0
    with fits.open(tmp_path / "truth" / f"{key}.fits") as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "CEILING", "REGIONS"]
        assert hdul["REGIONS"].columns.names == [
            "REGION", "ANTIHALE", "LEADSIGN", "FLUX", "LEAD_X", "LEAD_Y", "FOLL_X", "FOLL_Y",
            "MU"]
