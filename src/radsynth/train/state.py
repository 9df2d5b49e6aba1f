"""Optimizer state <-> flat tensors + JSON, so resume state is safetensors, never a pickle."""

from __future__ import annotations

from typing import Any

import torch

from radsynth.errors import CheckpointMismatch


def optimizer_to_flat(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors keyed ``optim.<name>.<param index>.<key>``; the rest (param groups, scalar
    state) as JSON-ready values."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{name}.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_flat(
    name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    """Load what :func:`optimizer_to_flat` wrote into ``optimizer``."""
    prefix = f"optim.{name}."
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, _, field = key[len(prefix) :].partition(".")
            state.setdefault(int(index), {})[field] = value
    for key, value in meta.get("scalars", {}).items():
        index, _, field = key.partition(".")
        state.setdefault(int(index), {})[field] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as err:
        raise CheckpointMismatch(
            f"optimizer {name!r} state does not fit: {' '.join(str(err).split())}"
        ) from None
