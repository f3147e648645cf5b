"""CPU checks of the GPU speed code: the same numbers as the plain model, only faster kernels."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from farside_gan.model.accel import GeneratorRunner
from farside_gan.training.loader import ThreadedLoader
from farside_gan.training.trainer import TrainConfig, build_networks

SMALL = TrainConfig(ngf=8, ndf=8, n_downsample=2, n_residual=1)


def test_generator_runner_on_cpu_is_the_plain_fp32_generator():
    torch.manual_seed(0)
    G, _ = build_networks(SMALL)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = G.eval()(x)
    run = GeneratorRunner(copy.deepcopy(G), torch.device("cpu"))
    assert not run.bf16
    assert torch.equal(run(x), expected)  # bit-identical: no autocast, no padding, no compile
    with pytest.raises(ValueError, match="precision"):
        GeneratorRunner(G, torch.device("cpu"), precision="fp16")


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
