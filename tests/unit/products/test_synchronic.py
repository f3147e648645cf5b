"""Synchronic Carrington maps (farside_gan.products.synchronic) on small maps of known fields."""

from __future__ import annotations

import json
from datetime import datetime

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.io import fits
from helpers.synchronic import INSTRUMENT, blob, write_map
from sunpy.coordinates import HeliographicCarrington

from farside_gan.cli import main
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import sha256_of
from farside_gan.products.synchronic import (SOURCE_CODES, OnGrid, SynchronicSettings,
                                             carrington_header, grid_coordinates, merge,
                                             observer_mu, pixel_areas, source_on_grid,
                                             synchronic_map, synchronic_period, write_synchronic)
from farside_gan.synthetic.field import SyntheticSun
from farside_gan.synthetic.instruments import observer_for
from farside_gan.synthetic.truth import carrington_truth

T = datetime(2011, 1, 31)
ROLES = ("hmi", "stereo_a", "stereo_b")
GRID = SynchronicSettings(projection="CAR", pixels=(180, 90))  # 2-degree cells: fast
SIGMA = 30.0


@pytest.fixture(scope="module")
def sun_maps(tmp_path_factory):
    """The synthetic Sun seen by the three observers at 64 px; the farside maps carry a
    constant 30 G uncertainty."""
    d = tmp_path_factory.mktemp("sources")
    sun = SyntheticSun(seed=0)
    field = lambda lon, lat: sun.radial_field(lon, lat, T)  # noqa: E731
    return {role: write_map(d / f"{role}.fits", role, T, field,
                            sigma=None if role == "hmi" else SIGMA) for role in ROLES}


def test_synchronic_map_opens_in_sunpy_with_carrington_coordinates(sun_maps, tmp_path):
    path = write_synchronic(tmp_path / "syn.fits", T, sun_maps, GRID, png=tmp_path / "syn.png",
                            uncertainty_png=tmp_path / "sigma.png")
    smap = sunpy.map.Map(path, hdus=0)
    assert isinstance(smap.coordinate_frame, HeliographicCarrington)
    assert smap.unit == u.G and smap.data.shape == (90, 180)
    assert smap.date.isot.startswith("2011-01-31T00:00:00")
    first = smap.pixel_to_world(0 * u.pix, 0 * u.pix)  # centre of the first 2-degree cell
    assert first.lon.to_value(u.deg) == pytest.approx(1.0)
    assert first.lat.to_value(u.deg) == pytest.approx(-89.0)
    # every extension is a map on the same grid; the provenance table is not
    maps = sunpy.map.Map(path)
    assert [m.meta["content"] for m in maps] == [
        "synchronic radial field", "1-sigma uncertainty (ensemble, merged)",
        "dominant source: code SRCn, 0 none", "mu of the dominant source"]
    assert all(isinstance(m.coordinate_frame, HeliographicCarrington) for m in maps)
    with fits.open(path) as hdul:
        h, data, source = hdul[0].header, hdul[0].data, hdul["SOURCE"].data
        prov = hdul["PROVENANCE"].data
        gap = ~np.isfinite(data)
        assert h["NGAP"] == gap.sum() > 0 and np.all(source[gap] == 0)
        assert sum(h[f"NSRC{c}"] for c in (1, 2, 3)) + h["NGAP"] == data.size
        assert h["NGAPPOLE"] <= h["NGAP"] and h["SWVER"] and h["RADIAL"] is True
        assert list(prov["ROLE"]) == list(ROLES)
        assert list(prov["SHA256"]) == [sha256_of(sun_maps[r]) for r in ROLES]
        assert list(prov["CKPTSHA"]) == ["", "ab" * 32, "ab" * 32]
        assert prov["HGLN_OBS"][1] == pytest.approx(observer_for("euvi_a", T).hgln)
    for png in ("syn.png", "sigma.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("role,projection", [("hmi", "CAR"), ("hmi", "CEA"),
                                             ("stereo_a", "CEA"), ("stereo_b", "CAR")])
def test_a_feature_lands_at_its_carrington_longitude_and_latitude(role, projection, tmp_path):
    """A spot put at a Carrington position by the synthetic Sun's own ray tracer peaks in the
    grid cell of that position (a mix-up of axes, longitude origin, observer or time moves it
    by tens of degrees)."""
    centre = observer_for(INSTRUMENT[role], T)
    lon0, lat0 = (centre.crln + 25.0) % 360.0, 17.0
    source = write_map(tmp_path / "in.fits", role, T, blob(lon0, lat0), size=128)
    settings = SynchronicSettings(projection=projection, pixels=(360, 180))
    arrays, header, _ = synchronic_map(T, {role: source}, settings)
    lon, lat = grid_coordinates(header)
    j, i = np.unravel_index(np.nanargmax(arrays["field"]), arrays["field"].shape)
    cell_lat = abs(np.diff(grid_coordinates(header)[1][:, 0]))[min(j, 178)]
    assert abs((lon[j, i] - lon0 + 180) % 360 - 180) <= header["CDELT1"]
    assert abs(lat[j, i] - lat0) <= cell_lat
    assert arrays["source"][j, i] == SOURCE_CODES[role]


def test_mu_is_one_under_the_observer_and_the_cosine_of_the_distance_elsewhere():
    header = carrington_header(T, GRID)
    centre = observer_for("euvi_a", T)
    from astropy.coordinates import SkyCoord
    from sunpy.coordinates import HeliographicStonyhurst
    observer = SkyCoord(centre.hgln * u.deg, centre.hglt * u.deg, centre.dsun * u.m,
                        frame=HeliographicStonyhurst(obstime=T))
    mu = observer_mu(header, observer, T)
    lon, lat = np.radians(grid_coordinates(header))
    lon0, lat0 = np.radians(centre.crln), np.radians(centre.crlt)
    cos_distance = np.sin(lat) * np.sin(lat0) + np.cos(lat) * np.cos(lat0) * np.cos(lon - lon0)
    # a finite distance sees slightly less than a hemisphere: differences of order R/D (0.005)
    assert np.max(np.abs(mu - cos_distance)) < 0.006
    assert mu.max() > 0.99
    assert pixel_areas(header).sum() == pytest.approx(4 * np.pi, rel=1e-6)


def _on_grid(name, value, mu, sigma=None):
    return OnGrid(name, None, np.asarray(value, np.float32), np.asarray(mu, np.float32),
                  None if sigma is None else np.asarray(sigma, np.float32), fits.Header())


def test_merge_keeps_a_lone_source_weights_overlaps_and_leaves_gaps_nan():
    nan = np.nan
    hmi = _on_grid("hmi", [[10.0, 20.0, nan, nan]], [[0.9, 0.5, 0.2, -0.3]], [[0, 0, 0, 0]])
    sta = _on_grid("stereo_a", [[nan, 60.0, 70.0, nan]], [[-0.1, 0.25, 0.8, 0.6]],
                   [[nan, 8.0, 5.0, nan]])
    out = merge([sta, hmi], SynchronicSettings(weight_power=2))
    field, sigma = out["field"][0], out["sigma"][0]
    assert field[0] == 10.0 and field[2] == 70.0 and np.isnan(field[3])  # lone sources exact
    w_hmi, w_sta = 0.5 ** 2, 0.25 ** 2
    assert field[1] == pytest.approx((w_hmi * 20 + w_sta * 60) / (w_hmi + w_sta))
    assert sigma[1] == pytest.approx(w_sta * 8.0 / (w_hmi + w_sta))  # HMI adds none
    assert sigma[0] == 0.0 and sigma[2] == 5.0 and np.isnan(sigma[3])
    assert list(out["source"][0]) == [1, 1, 2, 0]
    assert out["mu"][0][:3] == pytest.approx([0.9, 0.5, 0.8]) and np.isnan(out["mu"][0][3])
    # no uncertainty for a generated source: none for the map
    assert merge([_on_grid("stereo_a", [[1.0]], [[1.0]]), _on_grid("hmi", [[2.0]], [[0.5]],
                                                                    [[0.0]])],
                 GRID)["sigma"] is None


def test_where_one_source_covers_the_merged_value_is_that_sources(sun_maps):
    inputs = {"hmi": sun_maps["hmi"], "stereo_a": sun_maps["stereo_a"]}
    arrays, header, _ = synchronic_map(T, inputs, GRID)
    alone = {r: source_on_grid(r, p, GRID) for r, p in inputs.items()}
    covered = {r: np.isfinite(g.value) for r, g in alone.items()}
    only_hmi = covered["hmi"] & ~covered["stereo_a"]
    only_sta = covered["stereo_a"] & ~covered["hmi"]
    none = ~covered["hmi"] & ~covered["stereo_a"]
    assert only_hmi.sum() > 1000 and only_sta.sum() > 1000 and none.sum() > 1000
    np.testing.assert_array_equal(arrays["field"][only_hmi], alone["hmi"].value[only_hmi])
    np.testing.assert_array_equal(arrays["field"][only_sta], alone["stereo_a"].value[only_sta])
    assert np.all(np.isnan(arrays["field"][none])) and header["NGAP"] == none.sum()
    # the uncertainty: 0 where HMI alone, the farside map's sigma / mu (radial) where it is alone
    assert np.all(arrays["sigma"][only_hmi] == 0)
    np.testing.assert_allclose(arrays["sigma"][only_sta],
                               SIGMA / alone["stereo_a"].mu[only_sta], rtol=1e-4)
    both = covered["hmi"] & covered["stereo_a"]
    assert np.all((arrays["sigma"][both] > 0)
                  & (arrays["sigma"][both] < SIGMA / alone["stereo_a"].mu[both] + 1e-3))


def test_the_synchronic_map_follows_the_true_radial_field(sun_maps):
    sun = SyntheticSun(seed=0)
    arrays, header, _ = synchronic_map(T, sun_maps, GRID)
    truth = carrington_truth(sun, header, T)
    ok = np.isfinite(arrays["field"])
    assert ok.mean() > 0.6
    assert np.corrcoef(arrays["field"][ok], truth[ok])[0, 1] > 0.9
    # a feature's field, not only its place: the strongest true pixels keep their sign
    strong = ok & (np.abs(truth) > 100)
    assert strong.sum() > 20 and np.mean(np.sign(arrays["field"][strong]) == np.sign(truth[strong])) > 0.95


def test_off_disk_nan_and_zero_fill_give_the_same_map(tmp_path):
    field = blob(200.0, -10.0, width=8.0)
    zero = write_map(tmp_path / "zero.fits", "stereo_b", T, field, fill=0.0)
    nan = write_map(tmp_path / "nan.fits", "stereo_b", T, field, fill=np.nan)
    a, _, _ = synchronic_map(T, {"stereo_b": zero}, GRID)
    b, _, _ = synchronic_map(T, {"stereo_b": nan}, GRID)
    np.testing.assert_array_equal(a["field"], b["field"])
    np.testing.assert_array_equal(a["source"], b["source"])


def test_a_map_without_its_mask_radius_is_refused_by_name(tmp_path):
    path = write_map(tmp_path / "m.fits", "hmi", T, blob(220.0, 0.0))
    with fits.open(path, mode="update") as hdul:
        del hdul[0].header["MASKRAD"]
    with pytest.raises(InputDataError, match="m.fits.*MASKRAD"):
        synchronic_map(T, {"hmi": path}, GRID)


def test_period_and_single_time_commands(sun_maps, tmp_path):
    """The period command pairs each farside time with the prepared HMI frame of that time."""
    farside = {}
    for role in ("stereo_a", "stereo_b"):
        farside[role] = tmp_path / role
        farside[role].mkdir()
        (farside[role] / "20110131T0000.fits").write_bytes(sun_maps[role].read_bytes())
    prepared = tmp_path / "hmi"
    (prepared / "aligned" / "magnetogram").mkdir(parents=True)
    (prepared / "aligned/magnetogram/20110131T0000.fits").write_bytes(sun_maps["hmi"].read_bytes())
    (prepared / "records.json").write_text(json.dumps({"times": [
        {"time": "20110131T0000", "status": "ok",
         "aligned": {"magnetogram": "aligned/magnetogram/20110131T0000.fits"}},
        {"time": "20110131T1200", "status": "dropped", "aligned": {}}]}))
    args = ["synchronic", "--hmi-prepared", str(prepared), "--out-dir", str(tmp_path / "out"),
            "--png-dir", str(tmp_path / "png"), "--projection", "CAR", "--pixels", "180", "90"]
    for role, d in farside.items():
        args += ["--farside", f"{role}={d}"]
    assert main(args) == 0
    period = tmp_path / "out" / "20110131T0000.fits"
    single = tmp_path / "single.fits"
    assert main(["synchronic", "--time", "2011-01-31T00:00", "--output", str(single),
                 "--projection", "CAR", "--pixels", "180", "90"]
                + [f"--input={r}={p}" for r, p in sun_maps.items()]) == 0
    np.testing.assert_array_equal(fits.getdata(period), fits.getdata(single))
    assert (tmp_path / "png" / "20110131T0000.png").stat().st_size > 10000
    assert list(fits.getdata(period, "PROVENANCE")["FILE"])[0].endswith(
        "aligned/magnetogram/20110131T0000.fits")
    assert synchronic_period(tmp_path / "empty", {"stereo_a": tmp_path / "png"}) == []


def test_the_source_panel_has_a_legend_of_named_classes(sun_maps, tmp_path):
    """The source map is categorical: its panel names each class in a legend (no colour bar
    of codes), the near side as observed and each STEREO as generated from its EUV."""
    from farside_gan.products.figures import synchronic_figure
    out = tmp_path / "map.fits"
    assert main(["synchronic", "--time", "2011-01-31T00:00", "--output", str(out),
                 "--projection", "CAR", "--pixels", "180", "90"]
                + [f"--input={r}={p}" for r, p in sun_maps.items()]) == 0
    fig = synchronic_figure(out)
    field_axes, source_axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"][:2]
    labels = [t.get_text() for t in source_axes.get_legend().get_texts()]
    assert labels == ["none (no source sees it)", "SDO/HMI (observed)",
                      "STEREO-A (generated from EUVI)", "STEREO-B (generated from EUVI)"]
    assert field_axes.get_legend() is None
    # one colour bar, the field's (in Gauss); none for the class map
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert [bar.get_ylabel() for bar in bars] == ["B_r = B_LOS / mu (G)"]
