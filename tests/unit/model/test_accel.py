"""The GPU speed code (``farside_gan.model.accel``) gives the plain model's numbers: the GEMM
forms of few-channel convs compute F.conv2d's function and gradients (CPU, fp32), and on the CPU
the generator runner is the plain fp32 generator.

On CUDA ``GemmConv2d`` routes the generator's first/last and the discriminators' first/score
convs through these functions; here they are called directly so the CPU checks their arithmetic.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from farside_gan.model.accel import (GemmConv2d, GeneratorRunner, conv2d_im2col, conv2d_taps,
                                     gemm_route, use_gemm_convs)
from farside_gan.training.trainer import TrainConfig, build_networks


def _grads(fn, x, w, b):
    x, w, b = (t.detach().clone().requires_grad_() for t in (x, w, b))
    out = fn(x, w, b)
    # A fixed random cotangent, so every output pixel's gradient path is exercised.
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * g).sum().backward()
    return out.detach(), x.grad, w.grad, b.grad


@pytest.mark.parametrize("cin, cout, k, stride, padding", [
    (3, 8, 7, 1, 0),   # the generator's input conv (after reflection padding)
    (4, 16, 4, 2, 1),  # a discriminator's input conv
    (2, 5, 3, 1, 2),
])
def test_im2col_equals_conv2d(cin, cout, k, stride, padding):
    torch.manual_seed(0)
    x, w, b = torch.randn(2, cin, 23, 19), torch.randn(cout, cin, k, k), torch.randn(cout)
    expected = _grads(lambda x, w, b: F.conv2d(x, w, b, stride, padding), x, w, b)
    got = _grads(lambda x, w, b: conv2d_im2col(x, w, b, (stride,) * 2, (padding,) * 2), x, w, b)
    assert got[0].shape == expected[0].shape
    # Another summation order of the same float32 products: sums of up to 392 unit-variance
    # terms (values ~20) carry rounding ~1e-6 relative; 1e-4 leaves a margin of ~100.
    for a, e in zip(got, expected):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cin, cout, k, padding", [(8, 1, 7, 0), (16, 1, 4, 1), (3, 2, 3, 1)])
def test_taps_equal_conv2d(cin, cout, k, padding):
    torch.manual_seed(0)
    x, w, b = torch.randn(2, cin, 21, 18), torch.randn(cout, cin, k, k), torch.randn(cout)
    expected = _grads(lambda x, w, b: F.conv2d(x, w, b, 1, padding), x, w, b)
    got = _grads(lambda x, w, b: conv2d_taps(x, w, b, (padding,) * 2), x, w, b)
    assert got[0].shape == expected[0].shape
    for a, e in zip(got, expected):  # float32 summation order, as above
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)


def test_routes_only_the_few_channel_convs_and_keeps_the_state_dict():
    G, D = build_networks(TrainConfig())  # the published architecture
    state = {k: v.clone() for k, v in G.state_dict().items()}
    assert use_gemm_convs(G) == 2  # the 3->32 7x7 input conv (im2col), the 32->1 7x7 output (taps)
    assert use_gemm_convs(D) == 4  # per scale: the 4->64 4x4 input conv and the 512->1 score conv
    assert [gemm_route(m) for m in G.modules() if isinstance(m, GemmConv2d)] == ["im2col", "taps"]
    assert G.state_dict().keys() == state.keys()
    assert all(torch.equal(G.state_dict()[k], v) for k, v in state.items())


def test_generator_with_gemm_convs_matches_plain_generator():
    """The whole small generator with its two convs in GEMM form equals the plain one."""
    torch.manual_seed(0)
    G, _ = build_networks(TrainConfig(ngf=8, n_downsample=2, n_residual=1))
    gemm_G = copy.deepcopy(G)
    use_gemm_convs(gemm_G)
    # The CUDA routing, forced on the CPU for this check.
    for m in gemm_G.modules():
        if isinstance(m, GemmConv2d):
            route = gemm_route(m)
            m._conv_forward = (
                (lambda x, w, b, m=m: conv2d_taps(x, w, b, m.padding)) if route == "taps" else
                (lambda x, w, b, m=m: conv2d_im2col(x, w, b, m.stride, m.padding, m.dilation)))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        # float32 summation order in two convs; the norm layers after them rescale the
        # difference with the activations, so relative to the output as above
        torch.testing.assert_close(gemm_G(x), G(x), rtol=1e-4, atol=1e-5)
        # On the CPU, unforced, GemmConv2d is the plain conv, bit for bit.
        plain = copy.deepcopy(G)
        use_gemm_convs(plain)
        assert torch.equal(plain(x), G(x))


def test_gemm_forms_under_bf16_autocast_keep_the_parameter_dtypes():
    """Under autocast they compute in bf16 like F.conv2d; gradients come back in fp32 for the
    fp32 weight (what the optimizer needs) and match F.conv2d's to bf16 accuracy."""
    torch.manual_seed(0)
    x, w, b = torch.randn(2, 8, 20, 20), torch.randn(1, 8, 7, 7), torch.randn(1)
    for fn in (lambda x, w: conv2d_taps(x, w, b), lambda x, w: conv2d_im2col(x, w, b)):
        xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = fn(xs, ws)
            ref = F.conv2d(x, w, b)
        # bf16 products; the bias is added in fp32 (F.conv2d would return bf16)
        assert ref.dtype == torch.bfloat16 and out.dtype == torch.float32
        torch.testing.assert_close(out.float(), ref.float(), rtol=2e-2, atol=0.15)
        out.float().sum().backward()
        assert xs.grad.dtype == ws.grad.dtype == torch.float32
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        F.conv2d(xr, wr, b).sum().backward()
        for got, want in ((ws.grad, wr.grad), (xs.grad, xr.grad)):
            assert float((got - want).norm() / want.norm()) < 1e-2  # bf16: ~3e-3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("compiled", [False, True])
def test_gemm_convs_on_cuda_match_cudnn_in_bf16(compiled):
    """On CUDA (where GemmConv2d takes the GEMM forms) outputs and gradients match cuDNN's
    conv to bf16 accuracy, eager and under torch.compile (the training and predict path)."""
    torch.manual_seed(0)
    for conv, shape in ((torch.nn.Conv2d(3, 32, 7), (2, 3, 70, 70)),
                        (torch.nn.Conv2d(32, 1, 7), (2, 32, 70, 70)),
                        (torch.nn.Conv2d(4, 64, 4, 2, 1), (4, 4, 64, 64)),
                        (torch.nn.Conv2d(512, 1, 4, 1, 1), (4, 512, 15, 15))):
        conv = conv.cuda()
        gemm = copy.deepcopy(conv)
        assert use_gemm_convs(gemm) == 1
        x = torch.randn(shape, device="cuda")
        results = []
        for module in (conv, torch.compile(gemm) if compiled else gemm):
            module.zero_grad()
            xs = x.clone().requires_grad_()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = module(xs)
            out.float().square().mean().backward()
            results.append((out.float(), xs.grad, module.weight.grad))
        for got, want in zip(results[1], results[0]):
            assert float((got - want).norm() / want.norm()) < 2e-2


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
