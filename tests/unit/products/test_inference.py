import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.io import fits
from helpers.model import write_pair

from farside_gan.cli import main
from farside_gan.core.errors import InputDataError
from farside_gan.core.geometry import disk_mask
from farside_gan.model.checkpoint import load_generator
from farside_gan.products.inference import predict, sha256_of
from farside_gan.training.data import PairedFitsDataset
from farside_gan.training.trainer import TrainConfig, Trainer

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
    # Values in Gauss within the training clip, NaN off the disk (as HMI's level 1.5), not all
    # zero on it.
    disk = disk_mask(64, stack_header["R_SUN"], stack_header["MASKRAD"])
    assert np.all(np.isnan(smap.data[~disk])) and np.all(np.isfinite(smap.data[disk]))
    assert np.abs(smap.data[disk]).max() <= 3000.0 and np.abs(smap.data[disk]).max() > 1.0
    h = smap.meta
    assert h["bunit"] == "Gauss" and h["ckptsha"] == sha256_of(generator_file)
    assert h["infile"] == farside_stacks[1].name and h["creator"] == "farside-gan"
    assert h["inchan2"] == 195 and "ctype3" not in h and h["naxis"] == 2
    # the header describes our product, not the EUVI input
    assert (h["origin"], h["telescop"], h["lvl_num"]) == ("farside-gan", "farside-gan", 2.0)
    assert h["instrume"] == "Pix2PixHD generator" and h["content"] == "generated LOS magnetogram"
    assert (h["intelesc"], h["ininstru"], h["indetect"]) == ("STEREO", "SECCHI", "EUVI")
    assert "detector" not in h and "wavelnth" not in h and "normtgt" not in h
    assert type(smap) is sunpy.map.GenericMap and h["obsrvtry"] == "STEREO_A"


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
    # the map lands on the part of the sphere its disk shows (within MASKRAD of the disk
    # centre, as the observer sees it; the interpolation loses about a pixel at the edge) and
    # nowhere else: off-disk NaN stays NaN
    grid = all_coordinates_from_map(carrington)
    observer = smap.observer_coordinate.transform_to(grid.frame)
    lon, lat = grid.lon.to_value(u.rad), grid.lat.to_value(u.rad)
    lon0, lat0 = observer.lon.to_value(u.rad), observer.lat.to_value(u.rad)
    cos_angle = np.sin(lat) * np.sin(lat0) + np.cos(lat) * np.cos(lat0) * np.cos(lon - lon0)
    projected_radius = np.sqrt(np.clip(1 - cos_angle ** 2, 0, 1))  # in Rsun, on the near side
    maskrad, rsun_px = smap.meta["maskrad"], smap.meta["r_sun"]
    finite = np.isfinite(carrington.data)
    assert np.all(cos_angle[finite] > 0) and np.all(projected_radius[finite] <= maskrad)
    inner = (cos_angle > 0) & (projected_radius <= maskrad - 2 / rsun_px)
    assert np.all(finite[inner]) and inner.sum() > 0.2 * inner.size


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

    from helpers.model import write_synthetic_manifest
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
    assert np.all(np.isnan(smap.data[~disk])) and np.all(np.isfinite(smap.data[disk]))


@pytest.fixture(scope="module")
def unusual_model(tmp_path_factory):
    """A generator trained on data of non-default conventions: targets clipped at 2000 G
    (NORMCLIP) and frames masked at 0.9 Rsun (MASKRAD); and EUVI stacks of the same."""
    d = tmp_path_factory.mktemp("unusual")
    stack, target, _ = write_pair(d, 0, 64, hmi_clip=2000.0, mask_radius=0.9)
    trainer = Trainer(TrainConfig(**TINY), PairedFitsDataset([(stack, target)]), d / "run",
                      device="cpu")
    stacks = [write_pair(d / "euvi", i, 64, instrument="euvi_a", mask_radius=0.9)[0]
              for i in range(2)]
    return trainer.save_generator(), stacks


def test_prediction_is_in_the_gauss_of_the_models_training_targets(unusual_model, tmp_path):
    """The model's output x the NORMCLIP of its training targets (2000 G here), whatever
    TrainConfig says; masked (NaN) beyond the stack's MASKRAD (0.9 here)."""
    import torch

    from farside_gan.model.checkpoint import load_generator
    generator, stacks = unusual_model
    G, _, conventions = load_generator(generator)
    assert conventions.hmi_clip == 2000.0 and conventions.mask_radius == 0.9
    (out,) = predict(generator, stacks[:1], outputs=[tmp_path / "m.fits"], device="cpu")
    field, h = fits.getdata(out, header=True)
    with torch.no_grad():
        raw = G(torch.from_numpy(fits.getdata(stacks[0]).astype(np.float32))[None])[0, 0].numpy()
    disk = disk_mask(64, h["R_SUN"], 0.9)
    assert h["MASKRAD"] == 0.9 and h["HMICLIP"] == 2000.0
    np.testing.assert_allclose(field[disk], np.clip(raw, -1, 1)[disk] * 2000.0, rtol=1e-5, atol=1e-3)
    assert np.all(np.isnan(field[~disk]))
    ring = disk_mask(64, h["R_SUN"], 0.98) & ~disk
    assert ring.any()  # the default mask would have kept these pixels


def test_predict_refuses_stacks_of_other_conventions_naming_them(unusual_model, generator_file,
                                                                 farside_stacks, tmp_path):
    generator, stacks = unusual_model
    # the model of 0.9-masked data and a stack masked at 0.98 (the default)
    with pytest.raises(InputDataError, match=f"{farside_stacks[0]}: frame conventions differ: "
                       r"mask_radius \(MASKRAD\) 0.98, the model's 0.9") as err:
        predict(generator, [stacks[0], farside_stacks[0]], tmp_path / "out", device="cpu")
    assert err.value.reason == "convention_mismatch"
    assert not (tmp_path / "out").exists()  # refused before anything was generated
    # a stack normalized with another EUV clip, or of another size
    data, header = fits.getdata(farside_stacks[0], header=True)
    header["NORMCHI"] = 500.0
    other = tmp_path / "clip500.fits"
    fits.writeto(other, data, header)
    with pytest.raises(InputDataError, match=r"clip500.fits: frame conventions differ: euv_clip "
                       r"\(NORMCLO/NORMCHI\) \(1, 500\), the model's \(1, 200\)"):
        predict(generator_file, [other], tmp_path / "out", device="cpu")
    small = write_pair(tmp_path / "small", 0, 32, instrument="euvi_a")[0]
    with pytest.raises(InputDataError, match=r"frame conventions differ: size \(NAXIS1\) 32, "
                       r"the model's 64.*rsun_px"):
        predict(generator_file, [small], tmp_path / "out", device="cpu")


def test_checkpoint_without_conventions_is_refused(generator_file, tmp_path):
    import torch
    ckpt = torch.load(generator_file, weights_only=True)
    del ckpt["conventions"]
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    with pytest.raises(InputDataError, match="old.pt: checkpoint records no frame conventions"):
        load_generator(old)
