"""Pix2PixHD objective: least-squares GAN loss + ``lambda_fm`` x feature matching.

With ``n_D`` scales, ``D(x)[k]`` the list of block outputs of scale k (last = patch scores):

* discriminator: ``0.5 * sum_k [ mean((D(real)[k][-1] - 1)^2) + mean(D(fake)[k][-1]^2) ]``
* generator GAN term: ``sum_k mean((D(fake)[k][-1] - 1)^2)``
* feature matching: ``(1/n_D) * sum_k sum_{j < last} mean|D(fake)[k][j] - D(real)[k][j]|``,
  real features detached. Each scale contributes once, averaged over the scales (the reference
  implementation accumulated this term wrongly across scales; this is the formula, not the
  error). For the default 3-layer PatchGAN this equals Pix2PixHD's weighting
  4 / (n_layers + 1) = 1.

Optional correlation-coefficient term (Pix2PixCC, Jeong et al. 2022): ``lambda_cc`` x the mean
over ``n_cc`` scales (the maps average-pooled 3x3 / stride 2 between scales, as the
discriminator's inputs are) of ``1 - CC(target, generated)``, CC the Pearson coefficient of each
sample's pixels (Pix2PixCC pools the batch; per sample keeps the term independent of the batch
size). It rewards getting the field's pattern right, whatever its amplitude.

Optional scale term (:func:`scale_loss`): ``lambda_scale`` x the L1 distance between the
block means of |generated| and |target| on the disk, at the evaluation's binning (the solar area
of 8x8 pixels at 1024 px), relative to the target's unsigned flux. The correlation term cannot
see the field's amplitude, and the GAN terms hold it only loosely (strong fields came out
compressed, weak ones inflated); this term is at least the map's relative unsigned-flux error
and vanishes only when every block's unsigned flux is right. It is blind to the sign.

All terms are computed in float32 even when the networks run under bf16 autocast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

Features = list[list[torch.Tensor]]


def lsgan_loss(features: Features, target_is_real: bool) -> torch.Tensor:
    """Sum over scales of mean((score - target)^2), target 1 for real and 0 for fake."""
    target = 1.0 if target_is_real else 0.0
    return sum(((scale[-1].float() - target) ** 2).mean() for scale in features)


def feature_matching_loss(fake: Features, real: Features) -> torch.Tensor:
    """Mean over scales of the summed L1 distances of intermediate features (real detached)."""
    per_scale = []
    for fake_scale, real_scale in zip(fake, real, strict=True):
        per_scale.append(sum((f.float() - r.detach().float()).abs().mean()
                             for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True)))
    return sum(per_scale) / len(per_scale)


def pearson_per_sample(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson CC of each sample's values (all dimensions but the first), float32."""
    a, b = a.float().flatten(1), b.float().flatten(1)
    da, db = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    return (da * db).sum(dim=1) / (torch.sqrt((da * da).sum(dim=1) * (db * db).sum(dim=1)) + eps)


def correlation_loss(generated: torch.Tensor, target: torch.Tensor, n_scales: int = 4) -> torch.Tensor:
    """Mean over scales and samples of 1 - CC(target, generated) (Pix2PixCC's Inspector)."""
    losses = []
    for k in range(n_scales):
        if k:
            generated = F.avg_pool2d(generated, 3, stride=2, padding=1, count_include_pad=False)
            target = F.avg_pool2d(target, 3, stride=2, padding=1, count_include_pad=False)
        losses.append((1.0 - pearson_per_sample(generated, target)).mean())
    return sum(losses) / len(losses)


def scale_loss(generated: torch.Tensor, target: torch.Tensor, disk: torch.Tensor,
               bin_factor: int, eps: float = 1e-6) -> torch.Tensor:
    """Mean over samples of sum_blocks |B(|generated|) - B(|target|)| / sum_blocks B(|target|).

    ``generated`` and ``target`` are (N, 1, H, W) maps, ``disk`` the (H, W) on-disk mask (off
    the disk both count as 0), ``B`` the mean over ``bin_factor`` x ``bin_factor`` blocks from
    the top-left corner (trailing rows and columns that fill no block dropped), as
    :func:`farside_gan.core.metrics.bin_image` bins. The sums over blocks are the maps' unsigned
    fluxes on the disk (up to the block area), so the term is at least |flux ratio - 1| and is
    0 only when every block's unsigned flux agrees; relative, it weighs a quiet map's excess
    flux as much as an active map's deficit. ``eps`` bounds the denominator of a target with no
    field. Unchanged when both maps change sign, or when one does; flipping both maps
    north-south leaves it unchanged when ``bin_factor`` divides H (the blocks map onto
    blocks) and the disk is symmetric.
    """
    mask = disk.to(dtype=torch.float32, device=generated.device)
    blocks_generated = F.avg_pool2d(generated.float().abs() * mask, bin_factor)
    blocks_target = F.avg_pool2d(target.float().abs() * mask, bin_factor)
    distance = (blocks_generated - blocks_target).abs().flatten(1).sum(dim=1)
    flux = blocks_target.flatten(1).sum(dim=1).clamp_min(eps)
    return (distance / flux).mean()


@dataclass
class GeneratorLoss:
    total: torch.Tensor
    gan: torch.Tensor
    feature_matching: torch.Tensor
    correlation: torch.Tensor | None = None
    scale: torch.Tensor | None = None


@dataclass(frozen=True)
class ScaleGeometry:
    """What :func:`scale_loss` needs of the data: its disk (H, W) and block size."""
    disk: torch.Tensor
    bin_factor: int


def generator_loss(fake: Features, real: Features, lambda_fm: float = 10.0,
                   generated: torch.Tensor | None = None, target: torch.Tensor | None = None,
                   lambda_cc: float = 0.0, n_cc: int = 4, lambda_scale: float = 0.0,
                   scale_geometry: ScaleGeometry | None = None) -> GeneratorLoss:
    """``fake`` = D(input, G(input)) with gradients to G; ``real`` = D(input, target).

    With ``lambda_cc`` > 0 the correlation term of ``generated`` (G(input)) against ``target``
    is added, with ``lambda_scale`` > 0 the scale term on ``scale_geometry``'s disk and blocks.
    """
    gan = lsgan_loss(fake, True)
    fm = feature_matching_loss(fake, real)
    total = gan + lambda_fm * fm
    cc = scale = None
    if (lambda_cc or lambda_scale) and (generated is None or target is None):
        raise ValueError("lambda_cc > 0 or lambda_scale > 0 needs the generated and target maps")
    if lambda_cc:
        cc = correlation_loss(generated, target, n_cc)
        total = total + lambda_cc * cc
    if lambda_scale:
        if scale_geometry is None:
            raise ValueError("lambda_scale > 0 needs the data's disk and bin factor")
        scale = scale_loss(generated, target, scale_geometry.disk, scale_geometry.bin_factor)
        total = total + lambda_scale * scale
    return GeneratorLoss(total=total, gan=gan, feature_matching=fm, correlation=cc, scale=scale)


def discriminator_loss(fake: Features, real: Features) -> torch.Tensor:
    """``fake`` = D(input, G(input).detach()); ``real`` = D(input, target)."""
    return 0.5 * (lsgan_loss(real, True) + lsgan_loss(fake, False))
