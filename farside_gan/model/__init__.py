"""The model: Pix2PixHD for EUV -> magnetogram (networks, losses, checkpoints, GPU speed pieces)."""

from farside_gan.model.losses import (discriminator_loss, feature_matching_loss, generator_loss,
                                      lsgan_loss)
from farside_gan.model.networks import (GlobalGenerator, MultiscaleDiscriminator,
                                        PatchDiscriminator, count_parameters, init_weights)

__all__ = ["GlobalGenerator", "MultiscaleDiscriminator", "PatchDiscriminator", "count_parameters",
           "init_weights", "lsgan_loss", "feature_matching_loss", "generator_loss",
           "discriminator_loss"]
