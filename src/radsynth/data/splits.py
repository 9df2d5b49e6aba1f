"""Subject-level train/val/test splits, deterministic from a seed and stratified by group.

Slices of one patient are near copies of each other, so splitting by image would leak the
test set into training; every split here is by subject. Stratifying by (modality, anatomy)
keeps a rare group (say, the two chest CTs) from landing wholly in train: each group with
at least two subjects gets one in train and one in test. The shuffle of a group depends
only on the seed and the group's name, so adding a new group does not reshuffle the others.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace

import numpy as np

from radsynth.data.manifest import SPLITS, Record
from radsynth.errors import InvalidInput

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)  # train, val, test


def _rng(seed: int, group: str) -> np.random.Generator:
    """A generator that depends on the seed and the group name only (stable across runs)."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """How many of ``n`` subjects go to train, val and test.

    Two or more subjects: at least one in test and one in train. Three or more, with a
    non-zero val fraction: at least one in val too. The rest follows the fractions.
    """
    _, f_val, f_test = fractions
    if n <= 1:
        return n, 0, 0
    n_test = max(1, round(n * f_test)) if f_test > 0 else 0
    n_val = max(1, round(n * f_val)) if f_val > 0 and n >= 3 else 0
    while n - n_test - n_val < 1:  # train keeps at least one subject
        if n_val > 0 and n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n - n_val - n_test, n_val, n_test


def _check_fractions(fractions: tuple[float, float, float]) -> None:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise InvalidInput(
            f"split fractions must be three non-negative numbers summing to 1, got {fractions}"
        )


def assign_splits(
    groups: Mapping[str, str],
    seed: int = 0,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    fixed: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Split subjects: ``groups`` maps subject -> stratum; returns subject -> split.

    ``fixed`` pins subjects to a split (e.g. the demo keeps its second lung CT for test);
    they count towards their group's quota and the rest is filled around them.
    """
    _check_fractions(fractions)
    fixed = dict(fixed or {})
    bad = {s: v for s, v in fixed.items() if v not in SPLITS}
    if bad:
        raise InvalidInput(f"fixed splits must be one of {', '.join(SPLITS)}, got {bad}")
    members: dict[str, list[str]] = defaultdict(list)
    for subject, group in groups.items():
        members[group].append(subject)
    result: dict[str, str] = {}
    for group in sorted(members):
        subjects = sorted(members[group])
        order = [subjects[i] for i in _rng(seed, group).permutation(len(subjects))]
        wanted = dict(zip(SPLITS, _counts(len(subjects), fractions), strict=True))
        for subject in order:
            if subject in fixed:
                result[subject] = fixed[subject]
                wanted[fixed[subject]] -= 1
        # Fill test first, then val, so held-out quotas are met before train takes the rest.
        free = [s for s in order if s not in fixed]
        for split in ("test", "val"):
            while wanted[split] > 0 and free:
                result[free.pop(0)] = split
                wanted[split] -= 1
        for subject in free:
            result[subject] = "train"
    return result


def subject_groups(records: Iterable[Record]) -> dict[str, str]:
    """Subject -> its stratum "modality/anatomy" (the most common one among its records)."""
    seen: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        seen[r.subject][f"{r.modality}/{r.anatomy or 'unknown'}"] += 1
    return {subject: counts.most_common(1)[0][0] for subject, counts in seen.items()}


def split_records(
    records: Iterable[Record],
    seed: int = 0,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    fixed: Mapping[str, str] | None = None,
) -> list[Record]:
    """The records with ``split`` set by subject (see :func:`assign_splits`)."""
    records = list(records)
    splits = assign_splits(subject_groups(records), seed, fractions, fixed)
    return [replace(r, split=splits[r.subject]) for r in records]


def split_leaks(records: Iterable[Record]) -> dict[str, list[str]]:
    """Subjects that appear in more than one split -> the splits they appear in."""
    seen: dict[str, set[str]] = defaultdict(set)
    for r in records:
        seen[r.subject].add(r.split)
    return {s: sorted(v) for s, v in sorted(seen.items()) if len(v) > 1}


def subject_fraction(records: Iterable[Record], fraction: float, seed: int = 0) -> set[str]:
    """The subjects of a ``fraction`` of the patients in ``records`` (a scarce-data regime),
    stratified by source and finding so 10 % of a corpus keeps its mix of hospitals and
    classes (see :func:`fraction_of_subjects`)."""
    seen: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        seen[r.subject][f"{r.source}/{(r.labels or {}).get('finding')}"] += 1
    return fraction_of_subjects({s: c.most_common(1)[0][0] for s, c in seen.items()}, fraction, seed)


def fraction_of_subjects(strata: Mapping[str, str], fraction: float, seed: int = 0) -> set[str]:
    """``fraction`` of the subjects of ``strata`` (subject -> stratum), drawn per stratum,
    each stratum keeping at least one. Fractions drawn with one seed are nested (the 10 %
    subjects are among the 25 %), so regimes differ only by what is added."""
    if not 0 < fraction <= 1:
        raise InvalidInput(f"a fraction of patients must lie in (0, 1], got {fraction}")
    members: dict[str, list[str]] = defaultdict(list)
    for subject, group in strata.items():
        members[group].append(subject)
    chosen: set[str] = set()
    for group in sorted(members):
        subjects = sorted(members[group])
        order = [subjects[i] for i in _rng(seed, group).permutation(len(subjects))]
        chosen.update(order[: max(1, round(fraction * len(order)))])
    return chosen
