"""Pix2PixHD objective: least-squares GAN loss + ``lambda_fm`` x feature matching.

With ``n_D`` scales, ``D(x)[k]`` the list of block outputs of scale k (last = patch scores):

* discriminator: ``0.5 * sum_k [ mean((D(real)[k][-1] - 1)^2) + mean(D(fake)[k][-1]^2) ]``
* generator GAN term: ``sum_k mean((D(fake)[k][-1] - 1)^2)``
* feature matching: ``(1/n_D) * sum_k sum_{j < last} mean|D(fake)[k][j] - D(real)[k][j]|``,
  real features detached. Each scale contributes once, averaged over the scales (the seed's
  code accumulated this term wrongly across scales; this is the formula, not the bug). For the
  default 3-layer PatchGAN this equals Pix2PixHD's weighting 4 / (n_layers + 1) = 1.

All terms are computed in float32 even when the networks run under bf16 autocast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

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


@dataclass
class GeneratorLoss:
    total: torch.Tensor
    gan: torch.Tensor
    feature_matching: torch.Tensor


def generator_loss(fake: Features, real: Features, lambda_fm: float = 10.0) -> GeneratorLoss:
    """``fake`` = D(input, G(input)) with gradients to G; ``real`` = D(input, target)."""
    gan = lsgan_loss(fake, True)
    fm = feature_matching_loss(fake, real)
    return GeneratorLoss(total=gan + lambda_fm * fm, gan=gan, feature_matching=fm)


def discriminator_loss(fake: Features, real: Features) -> torch.Tensor:
    """``fake`` = D(input, G(input).detach()); ``real`` = D(input, target)."""
    return 0.5 * (lsgan_loss(real, True) + lsgan_loss(fake, False))
