"""The threaded loader gives DataLoader's batches: in order over any dataset, with a reader's
error raised; on its direct path over real FITS pairs, with today's errors; and training with
reader threads equals training without workers."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import open_image, write_fits
from farside_gan.training.data import Augmentation, PairedFitsDataset
from farside_gan.training.loader import ThreadedLoader
from farside_gan.training.trainer import TrainConfig

N = 32


def pair_files(directory, n: int, size: int = N, seed: int = 0):
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        stack = rng.uniform(-1, 1, (3, size, size)).astype(np.float32)
        target = rng.uniform(-1, 1, (size, size)).astype(np.float32)
        pairs.append((write_fits(directory / f"in{i}.fits", stack),
                      write_fits(directory / f"tg{i}.fits", target)))
    return pairs


def assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert list(a) == list(b) == ["input", "target", "index"]
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
            assert torch.equal(a[k], b[k]), k


def loader_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("loader-")]


def test_direct_path_gives_the_dataloader_batches(tmp_path):
    ds = PairedFitsDataset(pair_files(tmp_path, 7))
    order = [5, 2, 6, 0, 3, 1, 4]
    for batch in (1, 3, 7):
        loader = ThreadedLoader(ds, batch, order, threads=3, prefetch=2)
        assert loader.direct
        assert_same_batches(list(loader), list(DataLoader(ds, batch_size=batch, sampler=order)))
    # The collate path still gives the same, and so does reading one item into rows.
    assert_same_batches(list(ThreadedLoader(ds, 3, order, direct=False)),
                        list(DataLoader(ds, batch_size=3, sampler=order)))
    rows = (np.full((3, N, N), 7, np.float32), np.full((1, N, N), 7, np.float32))
    ds.read_into(4, lambda shape: rows)
    assert np.array_equal(rows[0], ds[4]["input"].numpy())
    assert np.array_equal(rows[1], ds[4]["target"].numpy())
    assert not loader_threads()


def test_direct_path_pins_batches_on_cuda(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("pinned memory needs CUDA")
    ds = PairedFitsDataset(pair_files(tmp_path, 4))
    got = list(ThreadedLoader(ds, 2, [3, 1, 0, 2], threads=2, pin_memory=True))
    assert all(b[k].is_pinned() for b in got for k in b)
    assert_same_batches(got, list(DataLoader(ds, batch_size=2, sampler=[3, 1, 0, 2])))


def test_augmentation_takes_the_getitem_path(tmp_path):
    ds = PairedFitsDataset(pair_files(tmp_path, 4), augmentation=Augmentation(20.0, 2.0), seed=3)
    loader = ThreadedLoader(ds, 2, [2, 0, 3, 1], threads=2)
    assert not loader.direct and not ds.reads_into
    assert_same_batches(list(loader), list(DataLoader(ds, batch_size=2, sampler=[2, 0, 3, 1])))
    with pytest.raises(ValueError, match="rotation or translation"):
        ThreadedLoader(ds, 2, [0], direct=True)
    with pytest.raises(ValueError, match="cannot rotate or translate"):
        ds.read_into(0, lambda shape: None)


def test_the_north_south_flip_takes_the_direct_path_with_the_same_batches(tmp_path):
    """read_into flips a sample in place when its coin says so: the batches are those of
    dataset[index] (DataLoader), some samples flipped and some not."""
    pairs = pair_files(tmp_path, 8)
    ds = PairedFitsDataset(pairs, augmentation=Augmentation(ns_flip=True), seed=3)
    order = [5, 2, 7, 0, 3, 6, 1, 4]
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        loader = ThreadedLoader(ds, 2, order, threads=2)
        assert loader.direct and ds.reads_into
        assert_same_batches(list(loader), list(DataLoader(ds, batch_size=2, sampler=order)))
    plain = PairedFitsDataset(pairs)
    flipped = [i for i in range(8) if not torch.equal(ds[i]["target"], plain[i]["target"])]
    assert 0 < len(flipped) < 8, flipped  # epoch 1's coins: a mix (seeded, so always this mix)


def _bad(tmp_path, defect):
    """A pair (input, target) with one defect; returns the paths and the file it concerns."""
    stack = np.zeros((3, N, N), np.float32)
    target = np.zeros((N, N), np.float32)
    i, t = tmp_path / f"{defect}_in.fits", tmp_path / f"{defect}_tg.fits"
    bad_input = {"missing": None, "wrong_ndim": np.zeros((N, N), np.float32),
                 "not_square": np.zeros((3, N, N + 2), np.float32),
                 "wrong_channels": np.zeros((2, N, N), np.float32),
                 "nan": np.where(np.eye(N, dtype=bool), np.nan, stack).astype(np.float32),
                 "inf": np.where(np.eye(N, dtype=bool), -np.inf, stack).astype(np.float32),
                 "not_normalized": stack + 1.5}
    bad_target = {"target_wrong_ndim": np.zeros((1, N, N), np.float32),
                  "target_nan": np.full((N, N), np.nan, np.float32),
                  "target_not_normalized": target - 3,
                  "target_other_size": np.zeros((N // 2, N // 2), np.float32),
                  "target_other_size_and_nan": np.full((N // 2, N // 2), np.nan, np.float32)}
    if defect in bad_input:
        if bad_input[defect] is not None:
            write_fits(i, bad_input[defect])
        write_fits(t, target)
        return (i, t), i
    write_fits(i, stack)
    if defect in bad_target:
        write_fits(t, bad_target[defect])
        return (i, t), t
    write_fits(t, target)
    raw = i.read_bytes()
    if defect == "empty":
        i.write_bytes(b"")
    elif defect == "truncated":  # cut inside the data unit, as an interrupted copy does
        i.write_bytes(raw[:len(raw) - 2880 - 1000])
    elif defect == "garbage":
        i.write_bytes(b"not a FITS file" * 300)
    else:
        raise ValueError(defect)
    return (i, t), i


DEFECTS = ("missing", "empty", "truncated", "garbage", "wrong_ndim", "not_square",
           "wrong_channels", "nan", "inf", "not_normalized", "target_wrong_ndim", "target_nan",
           "target_not_normalized", "target_other_size", "target_other_size_and_nan")


@pytest.mark.parametrize("defect", DEFECTS)
def test_direct_path_raises_the_getitem_error_naming_the_file(tmp_path, defect):
    good = pair_files(tmp_path, 3)
    bad_pair, bad_file = _bad(tmp_path, defect)
    ds = PairedFitsDataset(good[:2] + [bad_pair] + good[2:])
    with pytest.raises(InputDataError) as expected:
        ds[2]
    loader = ThreadedLoader(ds, 2, [0, 1, 2, 3], threads=2, pin_memory=False)
    assert loader.direct
    batches = iter(loader)
    assert next(batches)["index"].tolist() == [0, 1]  # the batch before the bad file arrives
    with pytest.raises(InputDataError) as got:
        next(batches)
    assert str(bad_file) in str(got.value)
    assert (str(got.value), got.value.reason) == (str(expected.value), expected.value.reason)
    assert not loader_threads()


def test_truncated_file_fails_when_memory_mapped(tmp_path):
    (path, _), _ = _bad(tmp_path, "truncated")
    with pytest.raises(InputDataError, match="not a readable FITS file") as err:
        with open_image(path, memmap=True):
            pass
    assert err.value.reason == "corrupt_fits" and str(path) in str(err.value)


def test_first_bad_sample_of_a_batch_is_reported_and_sizes_must_agree(tmp_path):
    good = pair_files(tmp_path, 2)
    nan_pair, nan_file = _bad(tmp_path, "nan")
    missing_pair, missing_file = _bad(tmp_path, "missing")
    ds = PairedFitsDataset([good[0], missing_pair, nan_pair, good[1]])
    for _ in range(5):  # threads race; the error is always the first failing one in batch order
        with pytest.raises(InputDataError, match="does not exist") as err:
            list(ThreadedLoader(ds, 4, [0, 1, 2, 3], threads=4))
        assert err.value.path == str(missing_file)
    with pytest.raises(InputDataError, match="NaN"):
        list(ThreadedLoader(ds, 2, [2, 1], threads=2))
    # Samples of other sizes: fine one per batch (as DataLoader), an error naming a file if mixed.
    (tmp_path / "small").mkdir()
    mixed = PairedFitsDataset([good[0], *pair_files(tmp_path / "small", 1, size=N // 2)])
    assert_same_batches(list(ThreadedLoader(mixed, 1, [1, 0])),
                        list(DataLoader(mixed, batch_size=1, sampler=[1, 0])))
    with pytest.raises(InputDataError, match="differs from the others of its batch") as err:
        list(ThreadedLoader(mixed, 2, [0, 1], threads=2))
    assert err.value.reason == "bad_shape" and err.value.path in {str(p) for p, _ in mixed.pairs}


def test_threads_end_with_the_iteration(tmp_path):
    ds = PairedFitsDataset(pair_files(tmp_path, 8))
    for direct in (True, False):
        batches = iter(ThreadedLoader(ds, 1, list(range(8)), threads=4, prefetch=4, direct=direct))
        next(batches)
        assert loader_threads()
        batches.close()  # as when training breaks out of an epoch
        assert not loader_threads()


def test_headers_are_parsed_once_per_unchanged_file(tmp_path, monkeypatch):
    """Later epochs map the remembered data range; a changed file is parsed and checked again."""
    import os

    from astropy.io import fits

    import farside_gan.core.fitsio as fitsio
    ds = PairedFitsDataset(pair_files(tmp_path, 2))
    rows = (np.empty((3, N, N), np.float32), np.empty((1, N, N), np.float32))
    ds.read_into(0, lambda shape: rows)
    first = [r.copy() for r in rows]
    parses = []
    real_open_image = fitsio.open_image
    monkeypatch.setattr(fitsio, "open_image", lambda *a, **k: parses.append(a[0]) or real_open_image(*a, **k))
    rows[0][:] = rows[1][:] = 7
    ds.read_into(0, lambda shape: rows)
    assert parses == [] and all(np.array_equal(r, f) for r, f in zip(rows, first))
    # Rewritten with other values (new mtime): parsed again, new values.
    input_path, target_path = ds.pairs[0]
    write_fits(input_path, -first[0])
    os.utime(input_path, ns=(1, 1))  # a different modification time whatever the clock's resolution
    ds.read_into(0, lambda shape: rows)
    assert parses == [input_path] and np.array_equal(rows[0], -first[0])
    # Truncated afterwards: the size differs, so the error names the file as without the cache.
    data = target_path.read_bytes()
    target_path.write_bytes(data[:4000])  # inside the data unit (the header is 2880 bytes)
    with pytest.raises(InputDataError, match="truncated") as err:
        ds.read_into(0, lambda shape: rows)
    assert err.value.path == str(target_path)
    # Scaled data (BZERO) is never mapped raw: astropy applies the scaling each time.
    scaled = tmp_path / "scaled.fits"
    hdu = fits.PrimaryHDU(np.round((first[1][0] - 0.5) / 1e-4).astype(np.int16))
    hdu.header.update(BSCALE=1e-4, BZERO=0.5)
    hdu.writeto(scaled)
    images = fitsio.MappedImages()
    for _ in range(2):
        with images.open(scaled) as data:
            np.testing.assert_allclose(np.asarray(data, np.float32), first[1][0], atol=1e-4)
    assert images._layouts == {}


class Squares(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        if i == 7:
            raise OSError("sample 7 is unreadable")
        return {"input": torch.full((3, 4, 4), float(i)), "target": torch.tensor([i * i]), "index": i}


def test_threaded_loader_gives_the_dataloader_batches_in_order():
    order = [3, 1, 4, 0, 5, 9, 2, 6]
    threaded = list(ThreadedLoader(Squares(), 3, order, threads=4, prefetch=2))
    reference = list(DataLoader(Squares(), batch_size=3, sampler=order))
    assert len(threaded) == len(reference) == 3 == len(ThreadedLoader(Squares(), 3, order))
    for a, b in zip(threaded, reference):
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    assert threaded[-1]["index"].tolist() == [2, 6]


def test_threaded_loader_raises_a_reader_error():
    with pytest.raises(OSError, match="sample 7"):
        list(ThreadedLoader(Squares(), 2, [0, 1, 7, 2], threads=2))


def test_training_with_reader_threads_equals_training_without_workers(tmp_path):
    from helpers.model import write_manifest

    from farside_gan.training.data import PairedFitsDataset
    from farside_gan.training.trainer import Trainer
    manifest = write_manifest(tmp_path / "pairs", n_train=4, n=64)
    tiny = dict(ngf=4, ndf=4, n_downsample=2, n_residual=1, batch_size=2, epochs=1,
                epoch_decay=1, preview_every=0, keep_every_epochs=0, progress=False,
                num_threads=1)
    weights = []
    for workers in (0, 3):
        config = TrainConfig(**tiny, num_workers=workers, loader="threads")
        trainer = Trainer(config, PairedFitsDataset.from_manifest(manifest), tmp_path / f"w{workers}",
                          device="cpu")
        if workers:
            assert type(trainer.make_loader([0, 1, 2, 3])).__name__ == "ThreadedLoader"
        trainer.fit()
        weights.append(trainer.G.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
