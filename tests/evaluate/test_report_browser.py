"""report.html as a reader sees it: the utility study (regimes x arms) rendered from its
metrics, and the whole page opened in headless Chromium, where every chart must load and keep
its aspect ratio (a flex row once stretched the privacy histogram to three times its height)."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

from radsynth.evaluate.report import _utility, write_report

ARMS = ("real", "real+synthetic", "synthetic")
REGIMES = ("100 %", "25 %", "10 %")


def _ci(value: float, half: float = 0.05) -> dict[str, float]:
    return {"value": value, "low": value - half, "high": value + half}


def _arm(auroc: float, gain: float | None) -> dict:
    scored = {
        "accuracy": _ci(0.8),
        "balanced_accuracy": _ci(0.75),
        "auroc": _ci(auroc),
        "sensitivity_at_90_specificity": _ci(0.6),
        "per_seed": {"auroc": [auroc]},
    }
    if gain is not None:
        scored["vs_real"] = {"auroc": _ci(gain, 0.04)}
    return {**scored, "external": {"other hospital": scored}, "n_train": 40}


def test_the_study_table_names_every_regime_and_arm_and_marks_only_a_gain_above_zero():
    regime = {
        "attribute": "finding",
        "classes": ["absent", "present"],
        "test_counts": [30, 10],
        "external_counts": {"other hospital": [30, 10]},
        "settings": {"seeds": 3},
        "subjects": 12,
        "arms": {
            "real": _arm(0.70, None),
            "real+synthetic": _arm(0.80, 0.10),  # interval [0.06, 0.14]: a gain
            "synthetic": _arm(0.72, 0.02),  # interval [-0.02, 0.06]: none
            "pretrain:synthetic": {"skipped": "not enough samples: need >= 2, got 1"},
        },
    }
    study = {
        "attribute": "finding",
        "regimes": {"100 %": regime, "10 %": {"skipped": "too few patients", "subjects": 1}},
    }
    text = _utility(study)
    assert text.count("<span class='gain'>0.1 [0.06, 0.14]</span>") == 2  # internal and external rows
    assert "<span class='gain'>0.02" not in text
    assert "External test set: other hospital" in text
    assert "too few patients" in text and "not enough samples: need &gt;= 2, got 1" in text
    for arm in regime["arms"]:
        assert text.count(f"<td>{arm}</td>") == 2
    assert text.count("data:image/png;base64,") == 1  # the AUROC chart
    assert "means over 3 training seeds" in text

    single = {k: v for k, v in regime.items() if k != "subjects"}  # the demo's and the service's shape
    single["counts"] = {arm: [20, 20] for arm in regime["arms"]}
    single["within"] = {}
    assert "<th>arm</th><th>accuracy</th>" in _utility(single)


@pytest.fixture(scope="module")
def report_file(demo_manifest, tmp_path_factory):
    """A real evaluation of the demo test split (no radiomics, no attack) whose utility section
    is a real study: three regimes of the demo training patients, tiny CNNs. Real slices of the
    training split stand in for the generated ones; the page is under test, not the generator."""
    from radsynth.evaluate.features import DomainReader
    from radsynth.evaluate.run import EvaluationOptions, Models, evaluate
    from radsynth.evaluate.sets import load_set
    from radsynth.evaluate.utility import UtilitySettings, regime_sets, utility_study
    from radsynth.models.registry import shipped

    from .conftest import spread

    real = load_set(demo_manifest, "real", ("test",))  # 25 slices with a finding
    train = load_set(demo_manifest, "train", ("train",))
    synthetic = spread(load_set(demo_manifest, "synthetic", ("val",)), 32)
    settings = UtilitySettings(
        steps=2, batch_size=4, seeds=1, n_boot=5, augment=False, synthetic_per_real=1.0, arms=ARMS
    )
    models = Models(DomainReader(shipped("classifier")), DomainReader(shipped("encoder")))
    options = EvaluationOptions(n_boot=5, radiomics=False, utility=settings)
    evaluation = evaluate(real, synthetic, spread(train, 64), models, options)
    regimes = {
        name: (images, train) for name, images in regime_sets(train, (1.0, 0.25, 0.1), "finding").items()
    }
    halves = np.arange(len(real)) % 2 == 0
    evaluation.metrics["utility"] = utility_study(
        regimes, real.subset(halves), settings, external={"odd slices": real.subset(~halves)}
    )
    return write_report(evaluation, tmp_path_factory.mktemp("report"))[0]


@pytest.mark.slow  # a real evaluation and the utility CNNs, then Chromium
def test_every_chart_loads_keeps_its_aspect_ratio_and_the_study_is_shown(report_file, page, screenshot):
    page.goto(report_file.as_uri())  # returns after the load event: every data-URI image decoded
    figures = page.locator("img").evaluate_all(
        """images => images.map(i => ({
            section: [...document.querySelectorAll('h2')]
                .filter(h => h.compareDocumentPosition(i) & Node.DOCUMENT_POSITION_FOLLOWING)
                .pop().textContent,
            natural: [i.naturalWidth, i.naturalHeight],
            shown: [i.getBoundingClientRect().width, i.getBoundingClientRect().height],
        }))"""
    )
    assert len(figures) >= 6  # grids, confusion matrices, histogram, closest pairs, AUROC chart
    assert all(min(f["natural"]) > 0 for f in figures), figures  # every image decoded

    def ratio(size):
        return size[1] / size[0]

    stretched = [f for f in figures if ratio(f["shown"]) != pytest.approx(ratio(f["natural"]), rel=0.03)]
    assert not stretched

    chart = page.locator("img[alt='AUROC per arm and regime']")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] > 400
    tables = page.locator("h2:text-is('Utility') ~ table")
    expect(tables).to_have_count(2)  # the internal test set and one external
    expect(page.locator("h3", has_text="External test set: odd slices")).to_be_visible()
    for table in tables.all():
        cells = table.locator("tr").evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.innerText))")
        shown = {(row[0].split(" (")[0], row[1]) for row in cells[1:]}
        assert shown == {(regime, arm) for regime in REGIMES for arm in ARMS}
    screenshot(page, "report", full_page=True)
