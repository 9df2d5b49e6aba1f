"""Reading a dataset plan: the three forms expand to the same kind of image list, seeds
fixed by the index, exact label counts, and every bad plan refused in one line naming the
file (no model is loaded here)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from radsynth.errors import InvalidInput
from radsynth.generate.plan import Settings, read_plan

DEFAULTS = Settings("demo-ct-mr-64", seed=100)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(tmp_path, *items, name="plan.jsonl"):
    return _write(tmp_path, name, "".join(json.dumps(i) + "\n" for i in items))


def test_jsonl_items_number_images_and_seeds_from_the_plan_seed(tmp_path):
    plan = read_plan(
        _jsonl(
            tmp_path,
            {"prompt": "axial brain MR", "n": 2, "labels": {"finding": "none"}},
            {"prompt": "axial chest CT, lung window", "n": 3, "seed": 7, "steps": 5, "guidance": 2},
        ),
        DEFAULTS,
    )
    assert [s.index for s in plan.images] == [0, 1, 2, 3, 4]
    assert [s.seed for s in plan.images] == [100, 101, 7, 8, 9]  # plan seed + i; an item's own seed + j
    assert plan.images[0].labels == {"finding": "none"} and plan.images[2].labels == {}
    assert {(s.steps, s.guidance) for s in plan.images[2:]} == {(5, 2)}
    assert plan.images[0].batch_key != plan.images[2].batch_key  # other steps: another batch


def test_the_same_plan_in_yaml_is_the_same_dataset(tmp_path):
    items = [{"prompt": "axial brain MR", "n": 3}]
    jsonl = read_plan(_jsonl(tmp_path, *items), DEFAULTS)
    yaml_text = "seed: 100\nmodel: demo-ct-mr-64\nitems:\n  - {prompt: axial brain MR, n: 3}\n"
    assert read_plan(_write(tmp_path, "plan.yaml", yaml_text), DEFAULTS).sha256 == jsonl.sha256
    other = _write(tmp_path, "seed.yaml", yaml_text.replace("seed: 100", "seed: 5"))
    assert read_plan(other, DEFAULTS).sha256 != jsonl.sha256


def test_labels_with_proportions_give_exact_counts_ages_and_captions(tmp_path):
    text = """
total: 50
seed: 3
labels:
  finding: {normal: 0.4, pneumonia: 0.6}
  sex: {female: 25, male: 25}
age: {distribution: normal, mean: 50, sd: 15, min: 20, max: 80}
"""
    plan = read_plan(_write(tmp_path, "labels.yaml", text), DEFAULTS)
    assert plan.total == 50
    counts = plan.label_counts()
    assert counts["finding"] == {"normal": 20, "pneumonia": 30}
    assert counts["sex"] == {"female": 25, "male": 25}
    ages = [s.labels["age"] for s in plan.images]
    assert min(ages) >= 20 and max(ages) <= 80 and len(set(ages)) > 10
    first = plan.images[0]
    assert first.prompt.startswith("Chest X-ray, frontal view, ")
    assert f"{first.labels['age']} years, {first.labels['sex']}" in first.prompt
    assert ("No finding." in first.prompt) == (first.labels["finding"] == "normal")
    assert [s.seed for s in plan.images] == list(range(3, 53))
    assert read_plan(_write(tmp_path, "again.yaml", text), DEFAULTS).sha256 == plan.sha256  # seeded
    rows = Counter((s.labels["finding"], s.labels["sex"]) for s in plan.images)
    assert len(rows) == 4  # labels drawn independently, not in blocks


def test_proportions_round_by_largest_remainder(tmp_path):
    text = "total: 7\nlabels:\n  finding: {normal: 0.5, pneumonia: 0.5}\n"
    counts = read_plan(_write(tmp_path, "odd.yaml", text), DEFAULTS).label_counts()["finding"]
    assert sum(counts.values()) == 7 and sorted(counts.values()) == [3, 4]


BAD = {
    "counts do not add up": (
        "c.yaml",
        "total: 10\nlabels:\n  finding: {normal: 4, pneumonia: 5}\n",
        "counts add up to 9, not total 10",
    ),
    "proportions do not add up": (
        "p.yaml",
        "total: 10\nlabels:\n  finding: {normal: 0.4, pneumonia: 0.5}\n",
        "proportions add up to 0.9, not 1",
    ),
    "unknown label": ("l.yaml", "total: 10\nlabels:\n  tumour: {yes: 1.0}\n", "unknown label 'tumour'"),
    "unknown label value": (
        "v.yaml",
        "total: 10\nlabels:\n  finding: {normal: 0.5, fracture: 0.5}\n",
        "unknown value 'fracture'",
    ),
    "items total disagrees": (
        "t.yaml",
        "total: 5\nitems:\n  - {prompt: axial brain MR, n: 3}\n",
        "n add up to 3, not total 5",
    ),
    "over the maximum without --yes": (
        "big.yaml",
        "items:\n  - {prompt: axial brain MR, n: 10000}\n  - {prompt: axial brain MR, n: 1}\n",
        "10,001 images, over the 10,000 a run makes without --yes",
    ),
    "unknown item field": (
        "f.jsonl",
        '{"prompt": "axial brain MR", "n": 2}\n{"prompt": "axial brain MR", "count": 2}\n',
        "line 2: unknown field(s) count",
    ),
    "bad JSON": ("j.jsonl", '{"prompt": "axial brain MR", "n": 2\n', "line 1: bad JSON"),
    "n out of range": (
        "n.jsonl",
        '{"prompt": "axial brain MR", "n": 0}\n',
        "line 1: n must be a positive integer",
    ),
    "guidance out of range": ("g.yaml", "guidance: 99\nitems:\n  - {prompt: x, n: 1}\n", "guidance must be"),
    "unknown format": ("fmt.yaml", "format: jpeg\nitems:\n  - {prompt: x, n: 1}\n", "unknown format 'jpeg'"),
    "both forms": ("b.yaml", "total: 1\nlabels: {}\nitems: []\n", "either items: "),
    "age and age group": (
        "a.yaml",
        "total: 2\nlabels:\n  age_group: {adult: 1.0}\nage: {distribution: uniform}\n",
        "not both",
    ),
    "not a plan": ("plan.txt", "prompt\n", "a plan is .jsonl or .yaml"),
    "a generator kind as the model": (
        "k.jsonl",
        '{"prompt": "axial brain MR", "n": 1}\n{"prompt": "axial brain MR", "n": 1, "model": "ldm"}\n',
        "line 2: unknown model 'ldm': a shipped family (cxr-128, demo-ct-mr-64)",
    ),
    "a family of translators only": (
        "t.jsonl",
        '{"prompt": "axial brain MR", "n": 1, "model": "brain-real"}\n',
        "line 1: unknown model 'brain-real': a shipped family (cxr-128, demo-ct-mr-64)",
    ),
    "an unknown run model": (
        "m.yaml",
        "model: cxr-512\nitems:\n  - {prompt: x, n: 1}\n",
        "unknown model 'cxr-512'",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_plan_is_one_line_naming_the_file(case, tmp_path):
    name, text, words = BAD[case]
    path = _write(tmp_path, name, text)
    with pytest.raises(InvalidInput) as err:
        read_plan(path, DEFAULTS)
    message = str(err.value)
    assert words in message and name in message and "\n" not in message


def test_yes_allows_a_plan_over_the_maximum(tmp_path):
    path = _write(tmp_path, "big.yaml", "total: 10001\nlabels:\n  finding: {normal: 0.5, pneumonia: 0.5}\n")
    assert read_plan(path, DEFAULTS, yes=True).total == 10_001
