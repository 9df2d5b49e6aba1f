"""Per-sample seeds (Karras et al. 2022, EDM's ``StackedRandomGenerator``): the noise of
image i is drawn from its own ``torch.Generator(seed + i)``, so image i is the same whether
it is generated alone or in a batch of any size, and a single image can be reproduced
from the seed recorded in its provenance."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def sample_seeds(seed: int, n: int) -> list[int]:
    """The seeds of images ``0 .. n-1`` of a request with base ``seed``."""
    return [seed + i for i in range(n)]


def generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per sample (CPU, so the numbers do not depend on the device)."""
    return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]


def randn_per_sample(
    shape: Sequence[int], gens: Sequence[torch.Generator], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Standard normal noise (B, *shape), row i drawn from ``gens[i]`` on the CPU."""
    rows = [torch.randn(tuple(shape), generator=g) for g in gens]
    return torch.stack(rows).to(device)  # (B, *shape)
