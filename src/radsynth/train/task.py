"""The one interface between the training loop and a model: :class:`Task`.

The loop owns everything generic (data order, seeds, autocast, DDP, EMA, clipping,
checkpoints, logs); a task owns its networks, optimizers and losses. A task does one
training step in :meth:`Task.step` and asks the loop to apply each loss through
:meth:`StepContext.update`, so a GAN alternates its two optimizers and a diffusion model
uses one, without the loop ever asking which kind of task it runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import torch
from torch import nn

Batch = dict[str, Any]
"""``image`` (B, 1, H, W) float in [-1, 1] on the device; ``index`` (B,) positions of the
records; ``text``, ``modality``: lists of str; ``labels``: list of dicts (the manifest's
structured facts)."""


class Task(Protocol):
    """What the loop needs from a model's training recipe.

    ``shipped`` names the modules written to ``model.safetensors`` (what generation
    loads); the others (a discriminator) travel only in the resume state. ``ema`` names
    the modules whose exponential moving average is shipped instead of the raw weights.
    """

    shipped: tuple[str, ...]
    ema: tuple[str, ...]

    def modules(self) -> dict[str, nn.Module]:
        """Every module the task trains or uses, by name (names hold no dots)."""
        ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per independently updated part, by name."""
        ...

    def step(self, batch: Batch, ctx: StepContext) -> Mapping[str, torch.Tensor | float]:
        """One training step: forward passes, ``ctx.update(name, loss)`` per optimizer,
        return scalar logs (the same keys on every process and every step)."""
        ...

    def card(self, shipped: Mapping[str, nn.Module]) -> dict[str, Any]:
        """What generation needs to rebuild the model, given the weights being shipped:
        ``{"config": {component: settings}, "task_info": {"image": {size, spacing},
        "vocabulary": ..., "sampling": ...}}``."""
        ...


class StepContext:
    """What a task's step sees of the loop.

    ``nets`` are the modules to call in forward passes that train them (wrapped in
    ``DistributedDataParallel`` when several processes run). ``step`` is the index of the
    current step, counting from 0.
    """

    def __init__(
        self,
        nets: Mapping[str, nn.Module],
        raw: Mapping[str, nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        clip_grad: float,
        device: torch.device,
    ) -> None:
        self.nets = nets
        self._raw = raw
        self._optimizers = optimizers
        self._clip_grad = clip_grad
        self.device = device
        self.step = 0
        self.grad_norms: dict[str, float] = {}

    def update(self, optimizer: str, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` into the parameters of ``optimizer``, clip, and step it."""
        opt = self._optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, enabled=False):  # backward outside autocast
            loss.float().backward()
        params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
        if self._clip_grad > 0 and params:
            norm = torch.nn.utils.clip_grad_norm_(params, self._clip_grad)
            self.grad_norms[optimizer] = float(norm)
        opt.step()
        opt.zero_grad(set_to_none=True)

    @contextlib.contextmanager
    def frozen(self, name: str) -> Iterator[nn.Module]:
        """The plain module ``name`` with its gradients off: a fixed critic for the other
        player's update (a GAN's generator step). Gradients still flow through it to
        its inputs; outside DDP, so no gradient all-reduce is left waiting."""
        module = self._raw[name]
        flags = [p.requires_grad for p in module.parameters()]
        module.requires_grad_(False)
        try:
            yield module
        finally:
            for p, flag in zip(module.parameters(), flags, strict=True):
                p.requires_grad_(flag)


class LossTask:
    """Base for single-optimizer tasks: define :meth:`loss`; the step applies it to the
    optimizer named ``"model"``."""

    def loss(self, batch: Batch, nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, Any]]:
        raise NotImplementedError

    def step(self, batch: Batch, ctx: StepContext) -> Mapping[str, torch.Tensor | float]:
        loss, logs = self.loss(batch, ctx.nets)
        ctx.update("model", loss)
        return {"loss": loss.detach(), **logs}
