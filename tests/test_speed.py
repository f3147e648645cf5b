"""CPU checks of the GPU speed code: the same numbers as the plain model, only faster kernels."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from farside_gan.model.accel import AlignedConv2d, GeneratorRunner, align_conv_channels
from farside_gan.model.loader import ThreadedLoader
from farside_gan.training import TrainConfig, build_networks

SMALL = TrainConfig(ngf=8, ndf=8, n_downsample=2, n_residual=1)


class AlwaysPadded(AlignedConv2d):
    """Takes the CUDA path (channel padding) on the CPU too, to check its arithmetic here."""

    def pads(self, input):
        return True


def test_channel_padding_computes_the_same_function_and_gradients():
    torch.manual_seed(0)
    G, D = build_networks(SMALL)
    padded_G, padded_D = copy.deepcopy(G), copy.deepcopy(D)
    # First/last G convs (3 in, 1 out) and each scale's first/last D convs (4 in, 1 out).
    assert (align_conv_channels(padded_G), align_conv_channels(padded_D)) == (2, 4)
    assert padded_G.state_dict().keys() == G.state_dict().keys()
    for m in list(padded_G.modules()) + list(padded_D.modules()):
        if isinstance(m, AlignedConv2d):
            m.__class__ = AlwaysPadded
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    out, padded_out = G(x), padded_G(x)
    assert padded_out.shape == out.shape == (2, 1, 64, 64)
    torch.testing.assert_close(padded_out, out, rtol=1e-5, atol=1e-6)
    pair = torch.cat([x, out.detach()], 1)
    for a, b in zip(D(pair), padded_D(pair)):
        torch.testing.assert_close(a[-1], b[-1], rtol=1e-5, atol=1e-6)
    out.square().mean().backward()
    padded_out.square().mean().backward()
    first, last = G.model[1], G.model[-1]
    for name in ("model.1.weight", f"model.{len(G.model) - 1}.weight"):
        grad = dict(G.named_parameters())[name].grad
        padded_grad = dict(padded_G.named_parameters())[name].grad
        assert padded_grad.shape == grad.shape  # gradients land in the original shapes
        torch.testing.assert_close(padded_grad, grad, rtol=1e-4, atol=1e-7)
    assert first.weight.shape == (8, 3, 7, 7) and last.weight.shape == (1, 8, 7, 7)


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
    from model_helpers import write_manifest

    from farside_gan.model.data import PairedFitsDataset
    from farside_gan.training import Trainer
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
