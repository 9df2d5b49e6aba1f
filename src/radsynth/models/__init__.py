"""Networks (VAE, diffusion UNet, conditional GAN), their configs, and the noise /
denoiser interface that training tasks and samplers use.

Training tasks call: ``build_vae`` / ``build_vae_discriminator``, ``build_unet``,
``build_gan``, ``NoiseSchedule`` (``sample_t``, ``add_noise``, ``training_target``) and
``Denoiser``. Checkpoints (``radsynth.models.checkpoint``) belong to the training stack.
One LDM training step, in full::

    z0 = vae.encode_stage_2_inputs(to_model_range(images)) * vae_config.latent_scale
    captions = ["" if drop else c for c, drop in zip(captions, dropped)]  # 10-20 % -> ""
    context, mask = text_encoder.encode(captions)
    noise, t = torch.randn_like(z0), schedule.sample_t(len(z0), device=z0.device)
    out = denoiser(schedule.add_noise(z0, noise, t), t, context, mask)
    loss = F.mse_loss(out, schedule.training_target(z0, noise, t))
"""

from radsynth.models.config import Config
from radsynth.models.diffusion import Cond, Denoiser, DenoiserLike, NoiseConfig, NoiseSchedule
from radsynth.models.gan import ConditionalGenerator, ConditionalPatchDiscriminator, GANConfig, build_gan
from radsynth.models.intensity import to_model_range, to_unit_range
from radsynth.models.unet import UNetConfig, build_unet
from radsynth.models.vae import VAEConfig, build_vae, build_vae_discriminator

__all__ = [
    "Cond",
    "ConditionalGenerator",
    "ConditionalPatchDiscriminator",
    "Config",
    "Denoiser",
    "DenoiserLike",
    "GANConfig",
    "NoiseConfig",
    "NoiseSchedule",
    "UNetConfig",
    "VAEConfig",
    "build_gan",
    "build_unet",
    "build_vae",
    "build_vae_discriminator",
    "to_model_range",
    "to_unit_range",
]
