"""GPU speed pieces: few-channel convs as GEMMs, and the generator runner used for inference.

cuDNN runs the convs with few input or output channels (the generator's 3->32 7x7 input and
32->1 7x7 output convs, the discriminators' 4-channel input and 1-channel score convs) on slow
non-tensor-core kernels; :class:`GemmConv2d` computes them as matrix products instead (same
parameters, same function), which made training and inference faster under torch.compile
(measured in benchmarks/README.md). On the CPU everything runs unchanged in float32, so CPU
results stay bit-identical.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

#: im2col is used for convs whose patch (in_channels x kh x kw) has at most this many values.
IM2COL_MAX_PATCH = 256


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype F.conv2d would compute in: autocast's, else the input's. (unfold, pad and
    custom Functions are not on autocast's cast lists, so the GEMM forms cast themselves.)"""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def _add_bias(out: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    # In float32 (out is bf16 under autocast): the generator's output map keeps fp32 in its
    # last add, which also ran faster than adding in bf16, at more memory
    # (benchmarks/README.md). F.conv2d would return bf16 here.
    return out.float() + bias.float().view(1, -1, 1, 1)


def conv2d_im2col(x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """``F.conv2d`` as patches (``F.unfold``) times the weight matrix: one GEMM per batch.

    For convs with few input channels (the generator's 3-channel 7x7 input conv, the
    discriminators' 4-channel 4x4 input convs) cuDNN picks slow non-tensor-core kernels; a
    GEMM over a patch dimension of 64-147 runs at memory speed.
    """
    x = x.to(_compute_dtype(x))
    n, _, h, w = x.shape
    cout, _, kh, kw = weight.shape
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    out = torch.matmul(weight.reshape(cout, -1), cols).view(n, cout, ho, wo)
    return out if bias is None else _add_bias(out, bias)


class _TapConv(torch.autograd.Function):
    """Unpadded stride-1 conv as per-tap products, shifted and summed; gradients as GEMMs.

    Forward: one GEMM maps the C input channels to K = cout * kh * kw tap planes; the output
    is the sum of each plane shifted by its tap offset, accumulated in float32. Backward: the
    gradient of every tap plane is the output gradient shifted back, i.e. the im2col patches of
    the zero-padded output gradient (a cout-channel image: cheap), so both the input and the
    weight gradients are single GEMMs against those patches (with the taps flipped). Autograd
    through the 49 shifted slices instead makes torch.compile emit one masked 49-term sum per
    tap-plane element, a slow backward (benchmarks/README.md).
    """

    @staticmethod
    def forward(ctx, x, weight, dtype):
        n, cin, h, w = x.shape
        cout, _, kh, kw = weight.shape
        ho, wo = h - kh + 1, w - kw + 1
        xm = x.to(dtype)
        wm = weight.to(dtype).permute(0, 2, 3, 1).reshape(cout * kh * kw, cin)
        taps = torch.matmul(wm, xm.reshape(n, cin, h * w)).view(n, cout, kh, kw, h, w)
        out = taps[:, :, 0, 0, :ho, :wo].float()
        for i in range(kh):
            for j in range(kw):
                if i or j:
                    out = out + taps[:, :, i, j, i:i + ho, j:j + wo]
        ctx.save_for_backward(xm, weight)
        ctx.dtype, ctx.x_dtype = dtype, x.dtype
        return out.to(dtype)

    @staticmethod
    def backward(ctx, grad_out):
        xm, weight = ctx.saved_tensors
        n, cin, h, w = xm.shape
        cout, _, kh, kw = weight.shape
        g = F.pad(grad_out.to(ctx.dtype), (kw - 1, kw - 1, kh - 1, kh - 1))
        # cols[(co, i', j'), (y, x)] = grad_out[co, y + i' - kh + 1, x + j' - kw + 1]: tap
        # (kh-1-i', kw-1-j')'s plane gradient, hence the flipped weight.
        cols = F.unfold(g, (kh, kw))
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            flipped = weight.to(ctx.dtype).flip(2, 3).permute(1, 0, 2, 3).reshape(cin, -1)
            grad_x = torch.matmul(flipped, cols).view(n, cin, h, w).to(ctx.x_dtype)
        if ctx.needs_input_grad[1]:
            per_tap = torch.matmul(cols, xm.reshape(n, cin, h * w).transpose(1, 2)).sum(0)
            grad_w = (per_tap.view(cout, kh, kw, cin).permute(0, 3, 1, 2).flip(2, 3)
                      .to(weight.dtype))
        return grad_x, grad_w, None


def conv2d_taps(x, weight, bias=None, padding=(0, 0)):
    """Stride-1 ``F.conv2d`` with few output channels as per-tap 1x1 products, shifted and summed.

    For the generator's 32->1 channel 7x7 output conv this replaces cuDNN's GEMM with a single
    output column (slow, non-tensor-core kernels) by GEMMs over 49 tap planes; see
    :class:`_TapConv`. Under autocast it computes in the autocast dtype, like ``F.conv2d``.
    """
    if padding[0] or padding[1]:
        x = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    out = _TapConv.apply(x, weight, _compute_dtype(x))
    return out if bias is None else _add_bias(out, bias)


def gemm_route(conv: nn.Conv2d) -> str | None:
    """Which GEMM form suits ``conv`` ("taps", "im2col") or None for cuDNN's own kernels."""
    if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return None
    kh, kw = conv.kernel_size
    if conv.out_channels == 1 and conv.stride == (1, 1) and conv.dilation == (1, 1) and kh * kw > 1:
        return "taps"
    if conv.in_channels * kh * kw <= IM2COL_MAX_PATCH:
        return "im2col"
    return None


class GemmConv2d(nn.Conv2d):
    """A Conv2d that, on CUDA, runs as :func:`conv2d_im2col` or :func:`conv2d_taps`.

    Same parameters and state dict, the same function up to float rounding; on the CPU it is
    a plain Conv2d (so CPU results stay bit-identical). See :func:`use_gemm_convs`.
    """

    def _conv_forward(self, input, weight, bias):
        route = gemm_route(self) if input.is_cuda else None
        if route == "taps":
            return conv2d_taps(input, weight, bias, self.padding)
        if route == "im2col":
            return conv2d_im2col(input, weight, bias, self.stride, self.padding, self.dilation)
        return super()._conv_forward(input, weight, bias)


def use_gemm_convs(module: nn.Module) -> int:
    """Make every Conv2d of ``module`` that :func:`gemm_route` routes a :class:`GemmConv2d`.

    Changes only the class (parameters and state dict stay); returns how many convs changed.
    """
    changed = 0
    for m in module.modules():
        if type(m) is nn.Conv2d and gemm_route(m):
            m.__class__ = GemmConv2d
            changed += 1
    return changed


class GeneratorRunner:
    """Call with a (B, C, N, N) float32 batch on the runner's device; returns float32 (B, 1, N, N)."""

    def __init__(self, G: torch.nn.Module, device: torch.device, precision: str = "auto",
                 channels_last: bool = False, compile: bool = False, gemm_convs: bool | None = None):
        if precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
        cuda = device.type == "cuda"
        self.bf16 = precision == "bf16" or (precision == "auto" and cuda)
        self.memory_format = torch.channels_last if cuda and channels_last else torch.contiguous_format
        self.G = G.to(device, memory_format=self.memory_format).eval()
        # The GEMM forms pay only when compiled (eager, the unfold is a separate slow pass).
        self.gemm_convs = cuda and (compile if gemm_convs is None else gemm_convs)
        if self.gemm_convs:
            use_gemm_convs(self.G)
        self.run = torch.compile(self.G) if cuda and compile else self.G

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=self.memory_format)
        ctx = (torch.autocast(x.device.type, dtype=torch.bfloat16) if self.bf16
               else contextlib.nullcontext())
        with ctx:
            return self.run(x).float()
