import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.io import fits

from farside_gan.cli import main
from farside_gan.errors import InputDataError
from farside_gan.geometry import disk_mask
from farside_gan.inference import load_generator, predict, sha256_of
from farside_gan.model.data import PairedFitsDataset
from farside_gan.training import TrainConfig, Trainer
from model_helpers import write_pair

TINY = dict(ngf=4, ndf=4, n_downsample=2, n_residual=1, progress=False, num_threads=1)


@pytest.fixture(scope="module")
def generator_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("gen")
    stack, target, _ = write_pair(d, 0, 64)
    trainer = Trainer(TrainConfig(**TINY), PairedFitsDataset([(stack, target)]), d / "run",
                      device="cpu")
    return trainer.save_generator()


@pytest.fixture(scope="module")
def farside_stacks(tmp_path_factory):
    d = tmp_path_factory.mktemp("euvi")
    return [write_pair(d, i, 64, instrument="euvi_a")[0] for i in range(3)]


def test_prediction_is_a_gauss_map_with_the_input_observer(generator_file, farside_stacks, tmp_path):
    outputs = predict(generator_file, farside_stacks, tmp_path / "out", batch_size=2, device="cpu")
    assert [p.name for p in outputs] == ["euvi_a_20110101_000000.fits",
                                         "euvi_a_20110101_120000.fits",
                                         "euvi_a_20110102_000000.fits"]
    smap = sunpy.map.Map(outputs[1])
    stack_header = fits.getheader(farside_stacks[1])
    assert smap.data.shape == (64, 64) and smap.data.dtype == np.dtype(">f4")
    assert smap.unit == u.G
    obs = smap.observer_coordinate
    assert obs.lon.to_value(u.deg) == pytest.approx(stack_header["HGLN_OBS"])
    assert obs.lat.to_value(u.deg) == pytest.approx(stack_header["HGLT_OBS"])
    assert obs.radius.to_value(u.m) == pytest.approx(stack_header["DSUN_OBS"])
    assert smap.date.isot.startswith("2011-01-01T12:00:00")
    # The disk centre pixel points at the Sun's centre, the limb at RSUN_OBS.
    centre = smap.pixel_to_world(31.5 * u.pix, 31.5 * u.pix)
    assert abs(centre.Tx.to_value(u.arcsec)) < 1e-6 and abs(centre.Ty.to_value(u.arcsec)) < 1e-6
    assert smap.rsun_obs.to_value(u.arcsec) == pytest.approx(stack_header["RSUN_OBS"])
    # Values in Gauss within the training clip, zero off the disk, not all zero on it.
    rsun_px = stack_header["RSUN_OBS"] / stack_header["CDELT1"]
    disk = disk_mask(64, rsun_px)
    assert np.all(smap.data[~disk] == 0)
    assert np.abs(smap.data).max() <= 3000.0 and np.abs(smap.data[disk]).max() > 1.0
    h = smap.meta
    assert h["bunit"] == "Gauss" and h["ckptsha"] == sha256_of(generator_file)
    assert h["infile"] == farside_stacks[1].name and h["creator"] == "farside-gan"
    assert h["inchan2"] == 195 and "ctype3" not in h and h["naxis"] == 2


def test_batching_does_not_change_the_result(generator_file, farside_stacks, tmp_path):
    one = predict(generator_file, farside_stacks, tmp_path / "one", batch_size=1, device="cpu")
    three = predict(generator_file, farside_stacks, tmp_path / "three", batch_size=3, device="cpu")
    for a, b in zip(one, three):
        # float32 summation order differs with the batch size: ~1e-6 relative
        np.testing.assert_allclose(fits.getdata(a), fits.getdata(b), rtol=1e-5, atol=1e-2)


def test_prediction_pixels_land_on_the_observers_hemisphere_and_reproject(
        generator_file, farside_stacks, tmp_path):
    from sunpy.coordinates import frames
    from sunpy.map import all_coordinates_from_map, coordinate_is_on_solar_disk
    from sunpy.map.header_helper import make_heliographic_header
    smap = sunpy.map.Map(predict(generator_file, farside_stacks[:1], tmp_path, device="cpu")[0])
    coords = all_coordinates_from_map(smap)
    on_disk = coordinate_is_on_solar_disk(coords)
    hgs = coords[on_disk].transform_to(frames.HeliographicStonyhurst(obstime=smap.date))
    lon, lat = hgs.lon.wrap_at(180 * u.deg).to_value(u.rad), hgs.lat.to_value(u.rad)
    lon0, lat0 = np.radians(105.0), np.radians(-2.0)  # the STEREO-A observer of the stack
    cos_angle = np.sin(lat) * np.sin(lat0) + np.cos(lat) * np.cos(lat0) * np.cos(lon - lon0)
    # every on-disk pixel lies on the hemisphere facing the observer...
    assert np.all(np.isfinite(cos_angle)) and np.all(cos_angle > 0)
    # ...and the disk spans it, centre (cos 1) to near the limb
    assert cos_angle.max() > 0.999 and cos_angle.min() < 0.3
    header = make_heliographic_header(smap.date, smap.observer_coordinate, (90, 180),
                                      frame="carrington")
    carrington = smap.reproject_to(header)
    assert carrington.data.shape == (90, 180)
    assert np.isfinite(carrington.data).sum() > 0.3 * carrington.data.size


def test_predict_cli_and_checkpoint_errors(generator_file, farside_stacks, tmp_path, capsys):
    assert main(["predict", "--checkpoint", str(generator_file), "--out-dir", str(tmp_path),
                 "--device", "cpu", str(farside_stacks[0])]) == 0
    assert (tmp_path / "euvi_a_20110101_000000.fits").is_file()
    # the workflow names its outputs itself
    assert main(["predict", "--checkpoint", str(generator_file), "--output",
                 str(tmp_path / "named/a.fits"), "--output", str(tmp_path / "named/b.fits"),
                 "--device", "cpu", str(farside_stacks[0]), str(farside_stacks[1])]) == 0
    assert fits.getheader(tmp_path / "named/b.fits")["INFILE"] == farside_stacks[1].name
    bad = tmp_path / "bad.pt"
    bad.write_bytes(generator_file.read_bytes()[:1000])
    with pytest.raises(InputDataError, match="bad.pt.*corrupt"):
        load_generator(bad)
    assert main(["predict", "--checkpoint", str(bad), "--out-dir", str(tmp_path),
                 str(farside_stacks[0])]) == 1
    assert "bad.pt" in capsys.readouterr().err
    # the same time twice would overwrite one output with another
    with pytest.raises(InputDataError, match="same output"):
        predict(generator_file, [farside_stacks[0], farside_stacks[0]], tmp_path, device="cpu")
    wrong = tmp_path / "wrong.fits"
    fits.writeto(wrong, np.zeros((2, 64, 64), np.float32))
    with pytest.raises(InputDataError, match="2 channels"):
        predict(generator_file, [wrong], tmp_path, device="cpu")


def test_train_and_predict_on_synthetic_pipeline_stacks(tmp_path):
    """The formats of the real chain (synthetic Sun -> calibrate -> align -> normalize -> stack ->
    manifest) go through train and predict; the farside map keeps STEREO-A's observer."""
    from datetime import datetime
    from model_helpers import write_synthetic_manifest
    t = datetime(2011, 1, 1)
    manifest = write_synthetic_manifest(tmp_path / "data", [t], [], size=64, farside_times=[t])
    sets = ["ngf=4", "ndf=4", "n_downsample=2", "n_residual=1", "epochs=2", "epoch_decay=1",
            "progress=false", "num_threads=1", "val_every_epochs=0"]
    assert main(["train", "--manifest", str(manifest), "--out-dir", str(tmp_path / "run"),
                 "--device", "cpu", *sum((["--set", s] for s in sets), [])]) == 0
    (stack,) = (tmp_path / "data/farside").glob("*.fits")
    assert main(["predict", "--checkpoint", str(tmp_path / "run/generator.pt"), "--out-dir",
                 str(tmp_path / "out"), "--device", "cpu", str(stack)]) == 0
    (out,) = (tmp_path / "out").glob("*.fits")
    assert out.name.startswith("euvi_a_20110101_")
    smap, stack_header = sunpy.map.Map(out), fits.getheader(stack)
    assert smap.unit == u.G and smap.data.shape == (64, 64)
    assert smap.observer_coordinate.lon.to_value(u.deg) == pytest.approx(stack_header["HGLN_OBS"])
    assert smap.observer_coordinate.radius.to_value(u.m) == pytest.approx(stack_header["DSUN_OBS"])
    assert smap.meta["inchan2"] == 195 and smap.meta["ininstru"] == stack_header["INSTRUME"]
    disk = disk_mask(64, stack_header["R_SUN"], stack_header["MASKRAD"])
    assert np.all(smap.data[~disk] == 0)


def test_mask_follows_the_inputs_maskrad(generator_file, farside_stacks, tmp_path):
    # A stack aligned with mask_radius 0.9 is masked at 0.9 Rsun, and the header says so.
    data, header = fits.getdata(farside_stacks[0], header=True)
    header["MASKRAD"] = 0.9
    stack = tmp_path / "stack_maskrad_0.9.fits"
    fits.writeto(stack, data, header)
    (out,) = predict(generator_file, [stack], outputs=[tmp_path / "m.fits"], device="cpu")
    field, h = fits.getdata(out, header=True)
    rsun_px = header["RSUN_OBS"] / header["CDELT1"]
    assert h["MASKRAD"] == 0.9
    assert np.all(field[~disk_mask(64, rsun_px, 0.9)] == 0)
    ring = disk_mask(64, rsun_px, 0.98) & ~disk_mask(64, rsun_px, 0.9)
    assert ring.any() and np.all(field[ring] == 0)
    assert np.count_nonzero(field[disk_mask(64, rsun_px, 0.9)]) > 0.9 * disk_mask(64, rsun_px, 0.9).sum()
