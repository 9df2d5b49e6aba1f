"""The explicit registry of training tasks: a recipe's ``task:`` -> its class.

Each class is built as ``TASKS[name](config, data, device)`` and follows
:class:`radsynth.train.task.Task`: ``vae`` (KL autoencoder, L1 + KL + patch adversarial),
``gan`` (text-conditional, hinge), ``ldm`` (latent diffusion on a trained VAE),
``classifier`` (the evaluation's attribute reader, trained on real slices), ``detector``
(real vs synthetic, for ``radsynth verify``), ``translate`` (restoration, paired
and unpaired translation), and ``smoke``
(a tiny autoencoder that checks the loop itself in seconds).
"""

from __future__ import annotations

from radsynth.train.tasks.classifier import ClassifierTask
from radsynth.train.tasks.detector import DetectorTask
from radsynth.train.tasks.gan import GANTask
from radsynth.train.tasks.ldm import LDMTask
from radsynth.train.tasks.smoke import SmokeTask
from radsynth.train.tasks.translate import TranslateTask
from radsynth.train.tasks.vae import VAETask

TASKS: dict[str, type] = {
    "vae": VAETask,
    "gan": GANTask,
    "ldm": LDMTask,
    "classifier": ClassifierTask,
    "detector": DetectorTask,
    "translate": TranslateTask,
    "smoke": SmokeTask,
}
