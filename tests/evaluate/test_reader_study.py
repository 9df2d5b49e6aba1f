"""Reader-study statistics against cases computed by hand, and Fleiss' kappa against the
worked example of Fleiss (1971) as Wikipedia tabulates it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from radsynth.errors import NotEnoughSamples
from radsynth.evaluate import reader_study as rs

# Four synthetic then four real images, as (answer, confidence):
# synthetic: caught sure (5), caught unsure (2), missed (1), missed (4)
# real: called real (5), real (3), called synthetic (1), real (2)
TRUTH = ["synthetic"] * 4 + ["real"] * 4
CALLS = [
    ("synthetic", 5),
    ("synthetic", 2),
    ("real", 1),
    ("real", 4),
    ("real", 5),
    ("real", 3),
    ("synthetic", 1),
    ("real", 2),
]


def answers(reader: str = "a", calls=CALLS) -> list[rs.Answer]:
    return [
        rs.Answer(reader, f"i{k}", t, c, conf)
        for k, (t, (c, conf)) in enumerate(zip(TRUTH, calls, strict=True))
    ]


def test_hand_computed_reader():
    got = rs.scores(answers(), n_boot=50)
    assert got["n"] == 8 and got["correct"] == 5
    assert got["accuracy"]["value"] == pytest.approx(5 / 8)
    assert got["sensitivity"]["value"] == pytest.approx(2 / 4)
    assert got["specificity"]["value"] == pytest.approx(3 / 4)
    assert got["fooled"]["value"] == pytest.approx(2 / 4)
    # scores: synthetic {5, 2, -1, -4} against real {-5, -3, 1, -2}: 4 + 4 + 3 + 1 = 12 of 16 pairs
    assert got["auroc"]["value"] == pytest.approx(12 / 16)
    # hit rate 0.5 (z = 0), false alarms 0.25 (z = -0.67449)
    assert got["d_prime"]["value"] == pytest.approx(0.6744897501960817)
    for name in ("accuracy", "auroc", "d_prime"):
        assert got[name]["low"] <= got[name]["value"] <= got[name]["high"]
        assert got[name]["low"] < got[name]["high"]  # the answers vary, so the interval is not a point


def test_rating_scale_and_ties():
    assert [rs.rating_score("real", 5), rs.rating_score("real", 1), rs.rating_score("synthetic", 3)] == [
        -5,
        -1,
        3,
    ]
    # synthetic {1, 1} against real {1, -1}: two ties (half each) and two wins: 3 / 4
    assert rs.auroc(np.array([1, 1, 0, 0]), np.array([1.0, 1.0, 1.0, -1.0])) == pytest.approx(0.75)
    with pytest.raises(NotEnoughSamples):
        rs.auroc(np.array([1, 1]), np.array([1.0, 2.0]))


def test_d_prime_keeps_perfect_rates_finite():
    # 4 of 4 hits -> 1 - 1/8; 0 of 4 false alarms -> 1/8: d' = 2 z(0.875)
    truth, call = np.array([1, 1, 1, 1, 0, 0, 0, 0]), np.array([1, 1, 1, 1, 0, 0, 0, 0])
    assert rs.d_prime(truth, call) == pytest.approx(2 * norm.ppf(0.875))
    assert rs.d_prime(truth, call) == pytest.approx(2.300698760752016)


def test_fleiss_kappa_wikipedia_worked_example():
    # Fleiss (1971) as tabulated on Wikipedia: 10 subjects, 14 raters, 5 categories; kappa 0.210
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert rs.fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_by_hand_and_refusals():
    # two readers, three items: agree, agree, split. P-bar = 2/3, P-e = 0.5 -> kappa = 1/3
    assert rs.fleiss_kappa(np.array([[2, 0], [0, 2], [1, 1]])) == pytest.approx(1 / 3)
    with pytest.raises(NotEnoughSamples):
        rs.fleiss_kappa(np.array([[1, 0], [0, 1]]))  # one reader
    with pytest.raises(NotEnoughSamples):
        rs.fleiss_kappa(np.array([[2, 0], [1, 0]]))  # unequal readers per item


def test_report_pools_readers_items_and_agreement():
    # reader b answers exactly opposite to a on every image
    flipped = [("real" if c == "synthetic" else "synthetic", k) for c, k in CALLS]
    both = answers("a") + answers("b", flipped)
    got = rs.report(both, n_boot=20)
    assert set(got["readers"]) == {"a", "b"}
    assert got["readers"]["b"]["accuracy"]["value"] == pytest.approx(3 / 8)
    assert got["pooled"]["accuracy"]["value"] == pytest.approx(0.5)
    assert got["pooled"]["n"] == 16
    # every image fooled exactly one of the two readers
    assert [item["fooled"] for item in got["items"]] == [0.5] * 8
    # total disagreement: every item split 1-1, categories 8/16 each -> P-bar 0, P-e 0.5, kappa -1
    assert got["agreement"] == {
        "fleiss_kappa": pytest.approx(-1.0),
        "readers": 2,
        "items": 8,
        "skipped": None,
    }
    one = rs.report(answers("a"), n_boot=5)["agreement"]
    assert one["fleiss_kappa"] is None and "2 readers" in one["skipped"]


# Pairs (2AFC): the real image's side and reader a's pick; a misses pairs 2 and 5 (6 of 8),
# reader b always picks "left" (right on the four left pairs: 4 of 8)
SIDES = ["left", "right"] * 4
PICKS_A = ["left", "right", "right", "right", "left", "left", "left", "right"]


def pair_answers(reader: str, picks: list[str]) -> list[rs.Answer]:
    return [rs.Answer(reader, f"p{k}", t, c, 3) for k, (t, c) in enumerate(zip(SIDES, picks, strict=True))]


def test_pairs_hand_computed():
    got = rs.pair_scores(pair_answers("a", PICKS_A), n_boot=50)
    assert got["n"] == 8 and got["correct"] == 6
    assert got["proportion_correct"]["value"] == pytest.approx(0.75)
    assert got["fooled"]["value"] == pytest.approx(0.25)
    # d' = sqrt(2) z(0.75) = 1.41421 * 0.67449
    assert got["d_prime"]["value"] == pytest.approx(0.9538725524)
    assert got["proportion_correct"]["low"] < 0.75 < got["proportion_correct"]["high"]
    # all right (4 of 4 -> 1 - 1/8) and all wrong (-> 1/8) stay finite
    truth, chosen = np.array([0, 1, 0, 1]), np.array([0, 1, 0, 1])
    assert rs.d_prime_2afc(truth, chosen) == pytest.approx(np.sqrt(2) * 1.1503493803760079)
    assert rs.d_prime_2afc(truth, 1 - chosen) == pytest.approx(-np.sqrt(2) * 1.1503493803760079)
    with pytest.raises(NotEnoughSamples):
        rs.proportion_correct(np.array([]), np.array([]))


def test_pairs_report_pools_readers_items_and_agreement():
    both = pair_answers("a", PICKS_A) + pair_answers("b", ["left"] * 8)
    got = rs.report(both, n_boot=20, pairs=True)
    assert got["mode"] == "pairs" and "auroc" not in got["pooled"]
    assert got["readers"]["b"]["proportion_correct"]["value"] == pytest.approx(0.5)
    assert got["readers"]["b"]["d_prime"]["value"] == pytest.approx(0.0)
    assert got["pooled"]["proportion_correct"]["value"] == pytest.approx(10 / 16)
    # share of readers who picked the synthetic image: b misses every "right" pair, a misses p2, p5
    assert [i["fooled"] for i in got["items"]] == [0, 0.5, 0.5, 0.5, 0, 1, 0, 0.5]
    # sides chosen: 4 pairs agree, 4 split -> P-bar 0.5; left 12/16 -> P-e 0.625; kappa -1/3
    assert got["agreement"]["fleiss_kappa"] == pytest.approx(-1 / 3)
    assert got["agreement"]["items"] == 8
    html = rs.render_html(got)
    assert "proportion correct (2AFC" in html and "8 shared pairs" in html
