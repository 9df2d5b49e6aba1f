"""Data order as a pure function of (seed, step, rank): resumable and split over processes.

Each process reads an endless stream: epoch ``e`` is ``DistributedSampler``'s shuffle for
``set_epoch(e)`` (the same permutation on every process, each taking every N-th index),
and step ``s`` takes positions ``[s * b, (s + 1) * b)`` of its stream. Resuming at step
``s`` therefore continues exactly where the interrupted run was, and the N per-process
batches of a step together are the single-process batch of ``N * b`` (when the data set
size is a multiple of N: ``DistributedSampler`` pads otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DistributedSampler, Sampler


class StepBatchSampler(Sampler[list[int]]):
    """Endless batches of indices for one process, starting at ``start_step``."""

    def __init__(
        self, size: int, batch_size: int, world_size: int, rank: int, seed: int, start_step: int = 0
    ) -> None:
        self.size, self.batch_size = size, batch_size
        self.world_size, self.rank, self.seed = world_size, rank, seed
        self.start_step = start_step

    def epoch_indices(self, epoch: int) -> list[int]:
        sampler = DistributedSampler(
            range(self.size), num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=self.seed
        )
        sampler.set_epoch(epoch)
        return list(sampler)

    def __iter__(self) -> Iterator[list[int]]:
        per_epoch = len(self.epoch_indices(0))
        epoch, offset = divmod(self.start_step * self.batch_size, per_epoch)
        current = self.epoch_indices(epoch)
        while True:
            batch: list[int] = []
            while len(batch) < self.batch_size:
                if offset == per_epoch:
                    epoch, offset = epoch + 1, 0
                    current = self.epoch_indices(epoch)
                take = min(self.batch_size - len(batch), per_epoch - offset)
                batch += current[offset : offset + take]
                offset += take
            yield batch
