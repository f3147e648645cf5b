"""The synthetic Sun: headers sunpy understands, geometry where the WCS says, physics the GAN needs."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.coordinates import SkyCoord
from astropy.io import fits
from sunpy.coordinates import HeliographicStonyhurst
from sunpy.map.sources import AIAMap, EUVIMap, HMIMap

from farside_gan.synthetic.solar_cycle import hale_leading_sign, solar_cycle
from farside_gan.synthetic import SyntheticSun, read_catalog, write_observation
from farside_gan.synthetic.instruments import observer_for
from farside_gan.synthetic.projection import Geometry

MAP_CLASS = {"aia": AIAMap, "hmi": HMIMap, "euvi_a": EUVIMap, "euvi_b": EUVIMap}
COMMON_KEYWORDS = ("DATE-OBS", "CTYPE1", "CTYPE2", "CUNIT1", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2",
                   "CDELT1", "CDELT2", "DSUN_OBS", "HGLN_OBS", "HGLT_OBS", "RSUN_REF", "WAVELNTH",
                   "INSTRUME", "TELESCOP", "DETECTOR", "OBSRVTRY", "BUNIT", "CHECKSUM", "DATASUM")
#: full-resolution plate scales (arcsec/px) of the real instruments
PLATE_SCALE = {"aia": (0.600698, 4096), "hmi": (0.504295, 4096), "euvi_a": (1.58777, 2048),
               "euvi_b": (1.58777, 2048)}


def open_map(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sunpy.map.Map(path)


@pytest.fixture(scope="module")
def catalog(synthetic_archive):
    return read_catalog(synthetic_archive)


def first_of(catalog, instrument, channel):
    return next(r for r in catalog if r["instrument"] == instrument and r["channel"] == str(channel))


def test_every_file_opens_as_the_right_map_class_with_real_keywords(synthetic_archive, catalog):
    assert len(catalog) == 3 * (3 + 1 + 3 + 3)
    for row in catalog:
        smap = open_map(synthetic_archive / row["path"])
        assert isinstance(smap, MAP_CLASS[row["instrument"]]), row["path"]
        with warnings.catch_warnings():
            warnings.simplefilter("error")   # checksum or standard violations would warn
            with fits.open(synthetic_archive / row["path"], checksum=True) as hdul:
                hdul.verify("exception")
                header = hdul[0].header
        missing = [k for k in COMMON_KEYWORDS if k not in header]
        assert not missing, f"{row['path']} lacks {missing}"
        scale, full = PLATE_SCALE[row["instrument"]]
        assert header["CDELT1"] == pytest.approx(scale * full / 128, rel=1e-6)
        # Reference time sunpy uses for coordinates is the catalog's time.
        assert abs((smap.reference_date.utc.to_datetime() - datetime.fromisoformat(row["time"])).total_seconds()) < 0.01
        if row["instrument"] == "hmi":
            assert smap.measurement == "magnetogram" and header["BUNIT"] == "Gauss"
            assert header["CROTA2"] == pytest.approx(180.0, abs=0.5)
            assert header["T_REC"].endswith("_TAI")
        else:
            assert smap.wavelength.to_value(u.AA) == pytest.approx(int(row["channel"]))
            assert 0.5 < smap.exposure_time.to_value(u.s) < 20.0
        if row["instrument"] in ("aia", "hmi"):
            assert header["QUALITY"] == 0
            assert smap.observer_coordinate.radius.to_value(u.AU) == pytest.approx(0.983, abs=0.002)  # January


def test_stereo_observers_follow_the_real_orbits():
    # sunpy's real EUVI-A test header: HGLN_OBS 51.801, HGLT_OBS 6.405, DSUN_OBS 1.43073e11 m.
    a = observer_for("euvi_a", datetime(2009, 6, 15, 0, 9, 8))
    assert a.hgln == pytest.approx(51.80, abs=1.0)
    assert a.hglt == pytest.approx(6.40, abs=0.5)
    assert a.dsun == pytest.approx(1.43073e11, rel=0.01)
    # 2011-02-06: the two spacecraft were 180 degrees apart.
    t = datetime(2011, 2, 6)
    separation = (observer_for("euvi_a", t).hgln - observer_for("euvi_b", t).hgln) % 360.0
    assert separation == pytest.approx(180.0, abs=5.0)


def disk_from_image(data: np.ndarray) -> np.ndarray:
    """Pixels of the solar disk measured from the data: finite (HMI) or bright 304 disk vs sky."""
    if np.issubdtype(data.dtype, np.floating):
        return np.isfinite(data)
    values = data.astype(float)
    return values > 0.35 * np.median(values[values > np.percentile(values, 60)])


def circle_of(disk: np.ndarray) -> tuple[float, float, float]:
    y, x = np.nonzero(disk)
    return x.mean(), y.mean(), np.sqrt(disk.sum() / np.pi)


@pytest.mark.parametrize("instrument,channel", [("aia", 304), ("euvi_a", 304), ("euvi_b", 304),
                                                ("hmi", "magnetogram")])
def test_solar_disk_lands_where_the_wcs_says(synthetic_archive, catalog, instrument, channel):
    smap = open_map(synthetic_archive / first_of(catalog, instrument, channel)["path"])
    x, y, radius = circle_of(disk_from_image(smap.data))
    centre = smap.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
    expected_radius = (smap.rsun_obs / smap.scale.axis1).to_value(u.pix)
    assert x == pytest.approx(centre.x.value, abs=0.3)
    assert y == pytest.approx(centre.y.value, abs=0.3)
    assert radius == pytest.approx(expected_radius, abs=0.6)
    # The pointing is perturbed: the disk is not exactly at the frame centre.
    assert np.hypot(centre.x.value - 63.5, centre.y.value - 63.5) > 0.05


def test_geometry_agrees_with_sunpy_coordinates(synthetic_archive, catalog):
    smap = open_map(synthetic_archive / first_of(catalog, "euvi_b", 195)["path"])  # rolled PC matrix
    assert abs(smap.meta["crota"]) > 0.01
    geometry = Geometry.from_target(smap)
    lon = np.full(smap.data.shape, np.nan)
    lat = lon.copy()
    for sl, rays in geometry.chunks():
        lon[sl][rays["on"]] = rays["lon"]
        lat[sl][rays["on"]] = rays["lat"]
    yy, xx = np.mgrid[0:128:7, 0:128:7]
    coords = smap.pixel_to_world(xx * u.pix, yy * u.pix).transform_to(
        HeliographicStonyhurst(obstime=smap.reference_date))
    on = np.isfinite(coords.lon.deg)
    assert on.sum() > 50
    np.testing.assert_array_equal(on, np.isfinite(lon[yy, xx]))
    dlon = (coords.lon.deg[on] - lon[yy, xx][on] + 180) % 360 - 180
    assert np.abs(dlon).max() < 1e-6
    assert np.abs(coords.lat.deg[on] - lat[yy, xx][on]).max() < 1e-6


def test_hmi_needs_a_180_degree_rotation_to_put_north_up(synthetic_archive, catalog, synthetic_sun):
    hmi = open_map(synthetic_archive / first_of(catalog, "hmi", "magnetogram")["path"])
    # In the raw array, solar north is at the bottom.
    north_pole = hmi.world_to_pixel(SkyCoord(0 * u.deg, 90 * u.deg, frame=HeliographicStonyhurst,
                                             obstime=hmi.reference_date, observer=hmi.observer_coordinate))
    assert north_pole.y.value < 64 - 40
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        north_up = hmi.rotate(order=1, recenter=True)
    truth = synthetic_sun.los_field(north_up)
    inner = np.isfinite(truth) & np.isfinite(north_up.data)
    inner &= np.abs(truth) > 0  # on disk
    cc_rotated = np.corrcoef(north_up.data[inner], truth[inner])[0, 1]
    # Reading the raw array as if it were north up (CROTA2 = 0) gets the Sun upside down.
    header = fits.getheader(synthetic_archive / first_of(catalog, "hmi", "magnetogram")["path"])
    header["CROTA2"] = 0.0
    as_if_north_up = synthetic_sun.los_field(header)
    both = np.isfinite(as_if_north_up) & np.isfinite(hmi.data)
    cc_unrotated = np.corrcoef(hmi.data[both], as_if_north_up[both])[0, 1]
    assert cc_rotated > 0.9
    assert cc_unrotated < 0.5


def test_hmi_file_is_the_noiseless_truth_plus_noise(synthetic_archive, catalog, synthetic_sun):
    path = synthetic_archive / first_of(catalog, "hmi", "magnetogram")["path"]
    data = fits.getdata(path)
    truth = synthetic_sun.los_field(fits.getheader(path))
    np.testing.assert_array_equal(np.isnan(data), np.isnan(truth))
    residual = (data - truth)[np.isfinite(truth)]
    assert np.std(residual) == pytest.approx(8.0 / 32, rel=0.1)   # 8 G at 4096 px, binned 32x
    assert np.nanmax(np.abs(truth)) > 300.0   # active regions are present
    # The same truth from the file path, the sunpy Map and the Map's WCS.
    smap = open_map(path)
    for target in (path, smap, smap.wcs):
        np.testing.assert_allclose(synthetic_sun.los_field(target), truth, atol=1e-3)


@pytest.mark.parametrize("instrument,channel,min_cc", [("aia", 304, 0.75), ("aia", 171, 0.45),
                                                       ("aia", 193, 0.35), ("euvi_a", 304, 0.7)])
def test_euv_brightness_correlates_with_field_strength(synthetic_archive, catalog, synthetic_sun,
                                                       instrument, channel, min_cc):
    smap = open_map(synthetic_archive / first_of(catalog, instrument, channel)["path"])
    field = synthetic_sun.los_field(smap)
    on = np.isfinite(field)
    rate = smap.data[on].astype(float) / smap.exposure_time.to_value(u.s)
    cc = np.corrcoef(np.log10(np.clip(rate, 1, None)), np.log10(np.abs(field[on]) + 10.0))[0, 1]
    assert cc > min_cc


def test_active_regions_obey_hale_and_joy():
    sun = SyntheticSun(seed=3, grid_deg=0.5)   # coarse grid: fast, same regions
    checked = {1: [], -1: []}
    tilts, bipolar = [], []
    for day in range(0, 360, 45):
        t = datetime(2012, 1, 1) + timedelta(days=day)
        cycle, _ = solar_cycle(t)
        assert cycle == 24
        for region in sun.active_regions(t):
            day_number = (t - datetime(2000, 1, 1)).total_seconds() / 86400
            if region.strength(day_number) < 0.3:
                continue
            (llon, llat), (flon, flat) = region.polarity_centres(day_number)
            # Measured on the rendered field: sign at the leading (westward) spot.
            b_lead = float(sun.radial_field(np.array([llon]), np.array([llat]), t)[0])
            b_follow = float(sun.radial_field(np.array([flon]), np.array([flat]), t)[0])
            assert (llon - flon) % 360 < 180   # leading spot is west of the following one
            checked[region.hemisphere].append(np.sign(b_lead))
            bipolar.append(np.sign(b_lead) == -np.sign(b_follow))
            tilts.append(abs(flat) - abs(llat))
    # Overlapping regions can swamp a spot now and then, as on the Sun; most are clean bipoles.
    assert np.mean(bipolar) > 0.85
    for hemisphere, signs in checked.items():
        assert len(signs) >= 10
        agree = np.mean(np.array(signs) == hale_leading_sign(24, hemisphere))
        assert agree >= 0.85, f"hemisphere {hemisphere}: only {agree:.0%} follow Hale's law"
    # Cycle 24: north leads with negative polarity.
    assert hale_leading_sign(24, 1) == -1 and hale_leading_sign(25, 1) == 1
    assert np.mean(np.array(tilts) > 0) > 0.8   # Joy: leading spot nearer the equator


def test_active_regions_keep_kilogauss_peaks_and_carry_most_of_the_flux_at_128_px(
        synthetic_archive, catalog, synthetic_sun):
    """At the sizes the tests train on, ARs must survive the pixel scale (~1 deg at 128 px) as on
    a binned HMI magnetogram of an active Sun: kG peaks, and most unsigned flux in strong field
    (the old, too small ARs: max ~900 G, 33-39% of the flux above 100 G)."""
    for row in (r for r in catalog if r["instrument"] == "hmi"):
        field = np.abs(synthetic_sun.los_field(open_map(synthetic_archive / row["path"])))
        field = field[np.isfinite(field)]
        assert field.max() > 1200.0, row["path"]
        assert field[field > 100.0].sum() / field.sum() > 0.45, row["path"]


def test_leading_polarity_is_compact_and_stronger_than_the_following():
    """As on the Sun (the leading spot a compact sunspot, the following polarity diffuse): with
    Hale and the hemisphere this is what lets a model infer the sign from EUV morphology."""
    sun = SyntheticSun(seed=3, grid_deg=0.5)
    ratios = []
    for day in range(0, 360, 60):
        t = datetime(2012, 1, 1) + timedelta(days=day)
        day_number = (t - datetime(2000, 1, 1)).total_seconds() / 86400
        for region in sun.active_regions(t):
            if region.strength(day_number) < 0.3:
                continue
            assert region.sigma_following > 1.5 * region.sigma_leading
            (llon, llat), (flon, flat) = region.polarity_centres(day_number)
            b = sun.radial_field(np.array([llon, flon]), np.array([llat, flat]), t)
            ratios.append(abs(b[0]) / max(abs(b[1]), 1.0))
    assert len(ratios) >= 20
    assert np.mean(np.array(ratios) > 2.0) > 0.85   # overlapping regions spoil a few


def test_field_rotates_differentially_between_times():
    sun = SyntheticSun(seed=1)
    t0 = datetime(2012, 3, 1)
    regions = [r for r in sun.active_regions(t0) if r.strength((t0 - datetime(2000, 1, 1)).days) > 0.3]
    region = max(regions, key=lambda r: r.peak_field)
    lat = region.lat
    lons = np.arange(0, 360, sun.grid_deg)
    row = lambda t: sun.radial_field(lons, np.full_like(lons, lat), t)
    a, b = row(t0), row(t0 + timedelta(hours=12))
    # The leading spot's longitude drifts relative to Carrington by (omega(lat) - omega_Carrington) dt.
    expected = (14.713 - 2.396 * np.sin(np.radians(lat)) ** 2 - 1.787 * np.sin(np.radians(lat)) ** 4
                - 14.1844) * 0.5
    spot = region.polarity_centres((t0 - datetime(2000, 1, 1)).days)[0][0]
    window = np.abs(((lons - spot) + 180) % 360 - 180) < 4
    peak = lambda r: lons[window][np.argmax(np.abs(r[window]))]
    shift = ((peak(b) - peak(a)) + 180) % 360 - 180
    assert shift == pytest.approx(expected, abs=sun.grid_deg)


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    def write(name, seed, noise_seed):
        return write_observation(tmp_path / name, SyntheticSun(seed=seed, grid_deg=0.5), "euvi_a", 195,
                                 "2012-05-01T00:00", size=64, seed=noise_seed).read_bytes()
    first = write("a.fits", 0, 0)
    assert first == write("b.fits", 0, 0)
    assert first != write("c.fits", 1, 0)
    assert first != write("d.fits", 0, 1)
    assert not list(tmp_path.glob(".*")), "no temporary files left behind"


def test_counts_scale_with_exposure_time(tmp_path):
    sun = SyntheticSun(seed=0)
    short = write_observation(tmp_path / "s.fits", sun, "aia", 171, "2012-05-01", size=64,
                              exptime=1.0, noise=False)
    long = write_observation(tmp_path / "l.fits", sun, "aia", 171, "2012-05-01", size=64,
                             exptime=2.0, noise=False)
    a, b = fits.getdata(short).astype(float), fits.getdata(long).astype(float)
    assert fits.getheader(long)["EXPTIME"] == 2.0
    bright = a > 50
    np.testing.assert_allclose(b[bright] / a[bright], 2.0, rtol=0.02)


def test_coronal_holes_are_dark_over_open_unipolar_field(synthetic_archive, catalog, synthetic_sun):
    smap = open_map(synthetic_archive / first_of(catalog, "aia", 193)["path"])
    geometry = Geometry.from_target(smap)
    surface = synthetic_sun.surface(geometry.time)
    from farside_gan.synthetic.field import sample_grid
    open_ = geometry.render(lambda lon, lat: sample_grid(surface["open"], lon, lat, synthetic_sun.grid_deg))
    field = synthetic_sun.los_field(smap)
    rate = smap.data / smap.exposure_time.to_value(u.s)
    hole, quiet = open_ > 0.6, (open_ < 0.05) & (np.abs(field) < 20)
    assert hole.sum() > 20 and quiet.sum() > 1000
    assert np.median(rate[hole]) < 0.45 * np.median(rate[quiet])
    # Open field is unipolar: the polar caps carry the sign of their hemisphere's polar field.
    br = surface["br"]
    lats = synthetic_sun.lats
    north, south = synthetic_sun.polar_signs(geometry.time)
    assert np.sign(br[lats > 75].mean()) == north and np.sign(br[lats < -75].mean()) == south
    assert abs(br[lats > 75].mean()) > 0.4 * np.abs(br[lats > 75]).mean()


def test_polar_fields_reverse_near_cycle_maximum():
    sun = SyntheticSun(seed=0)
    assert sun.polar_signs(datetime(2010, 1, 1)) == (-1, 1)    # cycle 24 rising: north negative
    assert sun.polar_signs(datetime(2016, 1, 1)) == (1, -1)    # after the 2013-14 reversal
    assert sun.polar_signs(datetime(2021, 1, 1)) == (1, -1)    # cycle 25 starts with north positive


def reference_header(name):
    import os

    import sunpy.data.test
    path = os.path.join(sunpy.data.test.rootdir, name)
    if name.endswith(".header"):
        return fits.Header.fromtextfile(path)
    return fits.getheader(path)


@pytest.mark.parametrize("instrument,channel,reference,keys", [
    ("aia", 171, "aia_171_level1.fits",
     ("TELESCOP", "INSTRUME", "DETECTOR", "WAVELNTH", "WAVEUNIT", "WAVE_STR", "LVL_NUM", "QUALITY",
      "EXPTIME", "T_OBS", "T_REC", "DATE-OBS", "CROTA2", "RSUN_OBS", "R_SUN", "RSUN_REF", "DSUN_REF",
      "X0_MP", "Y0_MP", "IMSCL_MP", "INST_ROT", "CRLN_OBS", "CRLT_OBS", "ORIGIN", "PIXLUNIT")),
    ("hmi", "magnetogram", "resampled_hmi.fits",
     ("TELESCOP", "INSTRUME", "DETECTOR", "WAVELNTH", "QUALITY", "T_OBS", "T_REC", "DATE-OBS",
      "CROTA2", "RSUN_OBS", "RSUN_REF", "CRLN_OBS", "CRLT_OBS", "ORIGIN", "CONTENT", "BUNIT")),
    ("euvi_a", 171, "euvi_20090615_000900_n4euA_s.header",
     ("OBSRVTRY", "INSTRUME", "DETECTOR", "WAVELNTH", "FILTER", "EXPTIME", "BUNIT", "DATE-OBS",
      "DATE-END", "FILENAME", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "CROTA", "RSUN", "CRLN_OBS",
      "CRLT_OBS", "LONPOLE")),
])
def test_headers_carry_the_real_instruments_keywords_with_real_values(tmp_path, instrument, channel,
                                                                      reference, keys):
    real = reference_header(reference)
    time = real["DATE-OBS"][:16]   # same date as the real file
    path = write_observation(tmp_path / "x.fits", SyntheticSun(seed=0, grid_deg=1.0), instrument, channel,
                             time, size=int(real["NAXIS1"]), noise=False)
    ours = fits.getheader(path)
    assert [k for k in keys if k not in ours] == []
    for key in keys:
        assert isinstance(ours[key], str) == isinstance(real[key], str), key   # numbers stay numbers
    for key in ("TELESCOP", "INSTRUME", "DETECTOR", "OBSRVTRY", "CONTENT", "WAVE_STR", "FILTER"):
        if key in keys and instrument != "hmi":
            assert ours[key].strip() == real[key].strip(), key
    # Same size and date as the real file: the geometry must agree with it closely.
    for key, tolerance in (("CDELT1", 0.01), ("RSUN_OBS", 0.002), ("RSUN", 0.01), ("DSUN_OBS", 0.01)):
        if key in real and key in ours:
            assert ours[key] == pytest.approx(real[key], rel=tolerance), key
    # STEREO's offline orbit ignores its ~0.1 deg inclination to the ecliptic.
    assert ours["CRLT_OBS"] == pytest.approx(real["CRLT_OBS"], abs=0.3)
    if "CROTA2" in keys:
        assert ours["CROTA2"] == pytest.approx(real["CROTA2"], abs=0.3)
    if "R_SUN" in keys:   # disk radius in this image's pixels (the rebinned test file kept 4096-px values)
        assert ours["R_SUN"] == pytest.approx(ours["RSUN_OBS"] / ours["CDELT1"], rel=1e-9)


@pytest.mark.parametrize("instrument,channel,size,cdelt,rsun_px", [
    ("aia", 171, 4096, 0.600698, (1570, 1640)), ("hmi", "magnetogram", 4096, 0.504295, (1870, 1960)),
    ("euvi_a", 195, 2048, 1.58777, (590, 650)), ("euvi_b", 304, 2048, 1.58777, (550, 610))])
def test_full_size_headers_have_the_real_plate_scales(instrument, channel, size, cdelt, rsun_px):
    from farside_gan.synthetic import plan_observation
    header = plan_observation(instrument, channel, "2011-03-01T00:00", size=size).header
    assert header["CDELT1"] == header["CDELT2"] == pytest.approx(cdelt)
    radius = (header.get("RSUN") or header["RSUN_OBS"]) / header["CDELT1"]
    assert rsun_px[0] < radius < rsun_px[1]
    assert abs(header["CRPIX1"] - (size + 1) / 2) < 30 and abs(header["CRPIX2"] - (size + 1) / 2) < 30
