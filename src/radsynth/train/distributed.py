"""Process-group set-up for ``torchrun`` (DDP) and the few collectives the loop needs.

One process (plain ``radsynth train``) is a world of size 1 and never touches
``torch.distributed``. Under ``torchrun`` the rank, world size and local rank come from
its environment variables; the backend is ``nccl`` on CUDA and ``gloo`` on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from radsynth.errors import InvalidInput

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: its rank among ``world_size`` and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, logs and the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(requested: str | None, local_rank: int = 0) -> torch.device:
    """``cuda`` when available unless ``requested`` says otherwise (``cpu`` or ``cuda``)."""
    if requested is not None and requested not in DEVICES:
        raise InvalidInput(f"--device must be one of {', '.join(DEVICES)}, got {requested!r}")
    kind = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInput("--device cuda: no CUDA device is available")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def start(requested_device: str | None = None) -> Runtime:
    """Join the ``torchrun`` process group if there is one; otherwise a world of one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Runtime(rank, world_size, local_rank, device)


def stop(runtime: Runtime, failed: bool = False) -> None:
    """Leave the process group; after a failure without the barrier, which the other
    processes might never reach (torchrun then stops them)."""
    if runtime.distributed and dist.is_initialized():
        if not failed:
            dist.barrier()
        dist.destroy_process_group()


def wrap(module: nn.Module, runtime: Runtime) -> nn.Module:
    """``DistributedDataParallel`` around a trained module when several processes run."""
    if not runtime.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def mean_over_processes(values: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """The mean of ``values`` (float64) across processes."""
    if runtime.distributed:
        values = values.to(runtime.device)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values = values / runtime.world_size
    return values.cpu()


def max_weight_difference(modules: dict[str, nn.Module], shipped: tuple[str, ...], runtime: Runtime) -> float:
    """Largest |w - w_rank0| over every parameter, and every buffer of the ``shipped``
    modules: 0.0 when all processes hold the same model. (A critic's BatchNorm statistics
    may differ between DDP's buffer broadcasts; they are never shipped.)"""
    if not runtime.distributed:
        return 0.0
    worst = torch.zeros((), dtype=torch.float64, device=runtime.device)
    for name, module in modules.items():
        tensors = module.state_dict().values() if name in shipped else module.parameters()
        for tensor in tensors:
            if not tensor.is_floating_point():
                continue
            reference = tensor.detach().clone()
            dist.broadcast(reference, src=0)
            worst = torch.maximum(worst, (tensor.detach() - reference).abs().max().double())
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    return float(worst)
