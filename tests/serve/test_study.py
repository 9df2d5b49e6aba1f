"""Reader studies end to end: a study of real demo slices and images of the shipped demo
model, taken through the API and in headless Chromium, reported by the CLI and the page.

One module fixture generates four synthetic images (5 sampler steps); the real images are
slices of the demo corpus, so the module runs in about half a minute on two cores.
"""

from __future__ import annotations

import io
import json
import subprocess
import time
from contextlib import ExitStack

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from radsynth.cli import main
from radsynth.data.manifest import resolve_manifest
from tests.serve.conftest import RADSYNTH

pytestmark = pytest.mark.slow

PROMPT = "axial chest CT, lung window, tumour in the right lung"


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("study-synthetic")
    cmd = [*RADSYNTH, "generate", PROMPT, "-n", "4", "--steps", "5", "--seed", "3", "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def admin_id(live_server):
    return live_server.app.state.store.authenticate(live_server.token).id


def new_study(live_server, synthetic_dir, admin_id, seed: int = 1) -> str:
    """A study of 8 images (4 real demo CT/MR slices, 4 synthetic), as the CLI makes it."""
    from radsynth.provenance.detector import SyntheticDetector
    from radsynth.serve.study import create_study

    store = live_server.app.state.store
    manifest = resolve_manifest("demo:64")
    return create_study(
        store,
        live_server.data_dir,
        admin_id,
        manifest,
        synthetic_dir,
        8,
        seed,
        detector=SyntheticDetector.load(),
    )


def reader_token(live_server, study_id: str, name: str) -> str:
    with live_server.client() as admin:
        made = admin.post(f"/api/studies/{study_id}/readers", json={"name": name})
    assert made.status_code == 201, made.text
    return made.json()["token"]


def test_api_hides_the_key_and_refuses_bad_requests(live_server, synthetic_dir, admin_id):
    with ExitStack() as stack:
        api_checks(
            live_server,
            synthetic_dir,
            admin_id,
            lambda secret: stack.enter_context(live_server.client(secret)),
        )


def api_checks(live_server, synthetic_dir, admin_id, client) -> None:
    """The API test's body; ``client(secret)`` opens a client closed when the test ends."""
    study_id = new_study(live_server, synthetic_dir, admin_id)
    reader = client(reader_token(live_server, study_id, "reader-api"))
    first = reader.get(f"/api/studies/{study_id}/next").json()
    assert set(first) == {"done", "item", "position", "total"}  # an opaque id, nothing about its origin
    assert (first["position"], first["total"]) == (1, 8)

    shown = reader.get(f"/api/studies/{study_id}/images/{first['item']}")
    assert shown.headers["content-type"] == "image/png"
    assert "content-disposition" not in shown.headers and shown.headers["cache-control"] == "no-store"
    png = Image.open(io.BytesIO(shown.content))
    assert (png.mode, png.size, png.info) == ("L", (64, 64), {})  # plain pixels: no text chunk at all
    rows = live_server.app.state.store.read(
        "SELECT id, truth FROM study_items WHERE study_id = ?", (study_id,)
    )
    with live_server.client() as owner:
        for row in rows:  # grey levels in the display window, never HU clipped to black and white
            pixels = np.asarray(
                Image.open(io.BytesIO(owner.get(f"/api/studies/{study_id}/images/{row['id']}").content))
            )
            assert len(np.unique(pixels)) > 32, row["truth"]

    assert (
        reader.get(f"/api/studies/{study_id}/reveal").json()["detail"]
        == "answer every image first (0 of 8 answered)"
    )
    bad = reader.post(
        f"/api/studies/{study_id}/answers",
        json={"item": first["item"], "answer": "real", "confidence": 7, "response_ms": 5},
    )
    assert (bad.status_code, bad.json()["detail"]) == (422, "confidence must be 1..5, got 7")
    body = {"item": first["item"], "answer": "real", "confidence": 3, "response_ms": 1200}
    assert reader.post(f"/api/studies/{study_id}/answers", json=body).json()["position"] == 2
    again = reader.post(f"/api/studies/{study_id}/answers", json=body)
    assert again.status_code == 409 and "already answered" in again.json()["detail"]

    # another admin, a reader of no study and a token without the scope see nothing of it
    other_admin = client(live_server.make_token("other-admin", ["admin"]))
    for path in (
        f"/api/studies/{study_id}/report",
        f"/api/studies/{study_id}/next",
        f"/api/studies/{study_id}/images/{first['item']}",
    ):
        refused = other_admin.get(path)
        assert (refused.status_code, refused.json()["detail"]) == (404, f"no study {study_id}")
    stranger = client(live_server.make_token("stranger", ["study"]))
    assert stranger.get(f"/api/studies/{study_id}/images/{first['item']}").status_code == 404
    # an image id is looked up among the study's own: no path, however spelled, reaches a file
    for hostile in ("..%2F..%2Fradsynth.db", "..%2Fother%2Fimage", "%00", "x" * 5000, first["item"] + ".png"):
        refused = reader.get(f"/api/studies/{study_id}/images/{hostile}")
        assert refused.status_code == 404 and len(refused.content) < 500, hostile[:40]
    generator = client(live_server.make_token("gen", ["generate"]))
    assert (
        generator.get(f"/api/studies/{study_id}/images/{first['item']}").json()["detail"]
        == "this token lacks the 'study' scope"
    )
    assert reader.get(f"/api/studies/{study_id}/report").status_code == 403  # readers never read the key

    # invitations: once, and not after they expire
    with live_server.client() as admin:
        invite = admin.post(f"/api/studies/{study_id}/invitations", json={"hours": 1}).json()
        brief = admin.post(f"/api/studies/{study_id}/invitations", json={"hours": 1e-7}).json()
    joined = client(None).post(f"/api/invitations/{invite['code']}", json={"name": "invited"})
    assert joined.status_code == 201 and joined.json()["study"] == study_id
    reused = client(None).post(f"/api/invitations/{invite['code']}", json={"name": "again"})
    assert (reused.status_code, reused.json()["detail"]) == (
        410,
        "this invitation was already used; ask the study's owner for a new one",
    )
    time.sleep(0.01)
    expired = client(None).post(f"/api/invitations/{brief['code']}", json={"name": "late"})
    assert expired.status_code == 410 and expired.json()["detail"].startswith("this invitation expired at")
    unknown = client(None).post("/api/invitations/nope", json={"name": "x"})
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "no such invitation: check the link")
    invited = client(joined.json()["token"])
    assert invited.get(f"/api/studies/{study_id}/next").json()["position"] == 1


def test_cli_creates_and_refuses_in_one_line(live_server, synthetic_dir, admin_id, capsys):
    data = str(live_server.data_dir)
    common = [
        "study",
        "create",
        "--real",
        "demo:64",
        "--synthetic",
        str(synthetic_dir),
        "--data-dir",
        data,
        "--no-detector",
    ]
    assert main([*common, "-n", "10", "--owner", admin_id]) == 1
    assert (
        capsys.readouterr().err.strip()
        == "error: a study of 10 images needs 5 synthetic images; the synthetic set has 4"
    )
    assert main([*common, "-n", "8", "--owner", "nobody"]) == 1
    assert "is not an admin token of this data folder" in capsys.readouterr().err
    assert main([*common, "-n", "7", "--owner", admin_id]) == 1
    assert "-n must be an even number" in capsys.readouterr().err
    report = ["study", "report", "nosuch", "-o", str(live_server.data_dir / "r"), "--data-dir", data]
    assert main(report) == 1
    assert capsys.readouterr().err.strip() == "error: no study nosuch"
    assert main([*common, "-n", "8", "--owner", admin_id]) == 0
    study_id = capsys.readouterr().out.strip()
    with live_server.client() as admin:
        listed = {s["id"]: s for s in admin.get("/api/studies").json()["studies"]}
    assert listed[study_id]["n"] == 8 and listed[study_id]["owner"]
    report[2] = study_id
    assert main(report) == 1
    assert capsys.readouterr().err.strip() == f"error: study {study_id} has no answers yet"


def expected_metrics(truth: list[str], calls: list[tuple[str, int]]) -> dict[str, float]:
    """The metrics computed here, independently of the library: sklearn's AUROC on the
    -5..5 rating scale, d' from scipy with the 1/(2N) correction."""
    y = np.array([t == "synthetic" for t in truth])
    said = np.array([c == "synthetic" for c, _ in calls])
    rating = np.array([k if c == "synthetic" else -k for c, k in calls])
    n_pos, n_neg = y.sum(), (~y).sum()
    hit = np.clip(said[y].mean(), 1 / (2 * n_pos), 1 - 1 / (2 * n_pos))
    false_alarm = np.clip(said[~y].mean(), 1 / (2 * n_neg), 1 - 1 / (2 * n_neg))
    return {
        "accuracy": float((y == said).mean()),
        "sensitivity": float(said[y].mean()),
        "specificity": float((~said[~y]).mean()),
        "fooled": float(1 - said[y].mean()),
        "auroc": float(roc_auc_score(y, rating)),
        "d_prime": float(norm.ppf(hit) - norm.ppf(false_alarm)),
    }


def join_by_invitation(live_server, page, study_id: str, name: str):
    """The owner makes a one-time link, the reader opens it in the browser and joins; returns
    the list every API answer the page gets is appended to (images aside) and the Take button."""
    with live_server.client() as admin:
        invite = admin.post(f"/api/studies/{study_id}/invitations", json={"hours": 1}).json()
    bodies: list[str] = []
    page.on(
        "response",
        lambda r: bodies.append(r.text()) if "/api/" in r.url and "/images/" not in r.url else None,
    )
    page.goto(live_server.url + invite["link"])
    page.fill("#invite-name", name)
    page.click("#invite-join")
    take = page.locator("#study-take")
    expect(take).to_be_visible()
    return bodies, take


def test_a_reader_takes_a_study_in_the_browser(
    live_server, synthetic_dir, admin_id, page, screenshot, tmp_path
):
    study_id = new_study(live_server, synthetic_dir, admin_id, seed=2)
    bodies, take = join_by_invitation(live_server, page, study_id, "Dr Reader")
    assert "invite" not in page.url  # the spent code leaves the address bar

    # the scripted reader: "synthetic" on odd positions, confidence cycling 1..5
    given: list[tuple[str, str, int]] = []
    for position in range(1, 9):
        expect(take).to_have_attribute("data-position", str(position))
        expect(page.locator("#study-position")).to_have_text(f"Image {position} of 8")
        page.wait_for_function("document.querySelector('#study-image').naturalWidth === 64")
        assert page.locator("[data-truth]").count() == 0 and page.locator("#study-result").is_hidden()
        answer, confidence = ("synthetic" if position % 2 else "real"), (position - 1) % 5 + 1
        given.append((take.get_attribute("data-item"), answer, confidence))
        if position == 1:
            screenshot(page.locator("#study"), "study-take")
        page.locator(f"#study-form input[name=answer][value={answer}]").check()
        page.locator(f"#study-form input[name=confidence][value='{confidence}']").check()
        if position == 8:
            answered = list(bodies)
        page.click("#study-submit")

    assert len({item for item, _, _ in given}) == 8  # each answer on the image then shown
    revealed = page.locator("#study-result figure.revealed")
    expect(revealed).to_have_count(8)
    assert sum('"item"' in text for text in answered) == 8  # the page's API answers were all seen
    for text in answered:  # before the last answer no label or evidence came over the wire
        assert '"truth"' not in text and "watermark" not in text and "detector" not in text
    truth = {f.get_attribute("data-item"): f.get_attribute("data-truth") for f in revealed.all()}
    assert sorted(truth.values()) == ["real"] * 4 + ["synthetic"] * 4
    correct = sum(truth[item] == answer for item, answer, _ in given)
    expect(page.locator("#study-result .score")).to_have_text(
        f"You labelled {correct} of 8 images correctly."
    )
    synthetic_evidence = revealed.filter(
        has=page.locator("strong.truth", has_text="Synthetic")
    ).first.locator(".evidence")
    expect(synthetic_evidence).to_contain_text("watermark")
    expect(synthetic_evidence).to_contain_text("found")
    screenshot(page.locator("#study"), "study-reveal")

    # a second reader over the API, then the report: its numbers are those of the answers given
    with live_server.client(reader_token(live_server, study_id, "second")) as second:
        for item, _, _ in given:
            body = {"item": item, "answer": "real", "confidence": 2, "response_ms": 900}
            assert second.post(f"/api/studies/{study_id}/answers", json=body).status_code == 201
    with live_server.client() as admin:
        report = admin.get(f"/api/studies/{study_id}/report").json()
    items = [item for item, _, _ in given]
    first_calls = [(a, k) for _, a, k in given]
    second_calls = [("real", 2)] * 8
    truths = [truth[i] for i in items]
    reader_ids = {name: rid for rid, name in report["reader_names"].items()}
    for name, calls in (("Dr Reader", first_calls), ("second", second_calls)):
        got = report["readers"][reader_ids[name]]
        for metric, value in expected_metrics(truths, calls).items():
            assert got[metric]["value"] == pytest.approx(value), (name, metric)
    pooled = expected_metrics(truths * 2, first_calls + second_calls)
    for metric, value in pooled.items():
        assert report["pooled"][metric]["value"] == pytest.approx(value), metric
    fooled = {i["item"]: i["fooled"] for i in report["items"]}
    for item, answer, _ in given:
        assert fooled[item] == ((answer != truth[item]) + (truth[item] != "real")) / 2
    # Fleiss' kappa by hand for two readers and two categories
    agree = np.mean([answer == "real" for _, answer, _ in given])
    share_real = (sum(a == "real" for _, a, _ in given) + 8) / 16
    p_e = share_real**2 + (1 - share_real) ** 2
    assert report["agreement"]["fleiss_kappa"] == pytest.approx((agree - p_e) / (1 - p_e))
    times = [a for a in report["answers"] if a["token_id"] == reader_ids["Dr Reader"]]
    assert len(times) == 8 and all(a["response_ms"] >= 0 and a["time"] for a in times)

    # the owner's report in the page shows the same pooled accuracy
    page.goto(live_server.url + "/")
    page.fill("#token", live_server.token)
    page.click("#token-save")
    page.locator(f"#study-list li[data-study='{study_id}'] button", has_text="Report").click()
    cell = page.locator("#study-report tr[data-metric=accuracy] td").first
    expect(cell).to_contain_text(f"{pooled['accuracy']:.3f}")
    screenshot(page.locator("#study-report"), "study-report")

    # and the CLI writes the same numbers as JSON and HTML
    out = tmp_path / "report"
    assert main(["study", "report", study_id, "-o", str(out), "--data-dir", str(live_server.data_dir)]) == 0
    written = json.loads((out / "report.json").read_text())
    assert written["pooled"]["auroc"]["value"] == pytest.approx(pooled["auroc"])
    assert "Fleiss' kappa" in (out / "report.html").read_text()


def test_an_invitation_opened_at_once_by_many_makes_one_reader(live_server, synthetic_dir, admin_id):
    """Eight threads open one link together: one reader token lives, the rest get 410 (a
    thread that lost the race after making its token has it revoked)."""
    from concurrent.futures import ThreadPoolExecutor

    from radsynth.serve.study import InvitationGone, Studies

    store = live_server.app.state.store
    studies = Studies(store, live_server.data_dir)
    study_id = new_study(live_server, synthetic_dir, admin_id, seed=3)
    owner = store.authenticate(live_server.token)
    for round_ in range(3):
        code, _ = studies.invite(study_id, owner, 1)
        before = {t.id for t in store.tokens()}

        def open_link(k: int, code=code, round_=round_) -> str:
            try:
                return studies.accept(code, f"race-{round_}-{k}")[1]
            except InvitationGone:
                return ""

        with ThreadPoolExecutor(8) as pool:
            secrets_ = [s for s in pool.map(open_link, range(8)) if s]
        assert len(secrets_) == 1
        assert len({t.id for t in store.tokens()} - before) == 1  # losers' tokens revoked
        assert studies.is_reader(study_id, store.authenticate(secrets_[0]))


def pair_metrics(truth: list[str], picks: list[str]) -> dict[str, float]:
    """2AFC metrics computed here: proportion correct, fooled, sqrt(2) z(PC) with 1/(2N)."""
    correct = np.mean([t == p for t, p in zip(truth, picks, strict=True)])
    n = len(truth)
    rate = np.clip(correct, 1 / (2 * n), 1 - 1 / (2 * n))
    return {"proportion_correct": correct, "fooled": 1 - correct, "d_prime": np.sqrt(2) * norm.ppf(rate)}


def test_pairs_study_api_and_cli(live_server, synthetic_dir, admin_id, capsys, tmp_path):
    data = str(live_server.data_dir)
    create = ["study", "create", "--real", "demo:64", "--synthetic", str(synthetic_dir), "--data-dir", data]
    assert main([*create, "--no-detector", "--pairs", "-n", "8", "--owner", admin_id]) == 0
    study_id = capsys.readouterr().out.strip()
    store = live_server.app.state.store
    key = {
        r["id"]: r["truth"] for r in store.read("SELECT * FROM study_items WHERE study_id = ?", (study_id,))
    }
    assert len(key) == 4 and set(key.values()) <= {"left", "right"}
    with ExitStack() as stack:
        reader = stack.enter_context(live_server.client(reader_token(live_server, study_id, "pair-a")))
        seen: list[str] = []  # every answer the reader got before the last one
        first = reader.get(f"/api/studies/{study_id}/next").json()
        seen.append(json.dumps(first))
        assert set(first) == {"done", "item", "images", "position", "total"}
        assert (first["position"], first["total"], len(set(first["images"]))) == (1, 4, 2)
        for image in first["images"]:  # opaque ids, plain pixels
            assert image != first["item"] and len(image) == 16
            shown = reader.get(f"/api/studies/{study_id}/images/{image}")
            assert shown.headers["cache-control"] == "no-store" and "content-disposition" not in shown.headers
            png = Image.open(io.BytesIO(shown.content))
            assert (png.mode, png.size, png.info) == ("L", (64, 64), {})
        body = {"item": first["item"], "answer": "real", "confidence": 3, "response_ms": 10}
        bad = reader.post(f"/api/studies/{study_id}/answers", json=body)
        assert (bad.status_code, bad.json()["detail"]) == (422, "answer must be left or right, got 'real'")
        assert reader.get(f"/api/studies/{study_id}/reveal").status_code == 409

        picks, items, next_ = ["left", "right", "right", "left"], [], first
        for k, pick in enumerate(picks):
            items.append(next_["item"])
            body = {"item": next_["item"], "answer": pick, "confidence": k + 1, "response_ms": 500}
            answered = reader.post(f"/api/studies/{study_id}/answers", json=body)
            assert answered.status_code == 201
            next_ = answered.json()
            if k < 3:
                seen.append(answered.text)
        again = reader.post(f"/api/studies/{study_id}/answers", json=body)
        assert again.status_code == 409 and "already answered" in again.json()["detail"]
        assert next_["done"] and len(set(items)) == 4
        for text in seen:
            assert "truth" not in text and "left" not in text and "right" not in text

        revealed = reader.get(f"/api/studies/{study_id}/reveal").json()
        truth = [key[i] for i in items]
        assert revealed["correct"] == sum(t == p for t, p in zip(truth, picks, strict=True))
        for pair in revealed["items"]:
            labels = {image["side"]: image["truth"] for image in pair["images"]}
            assert labels == {pair["truth"]: "real", ({"left", "right"} - {pair["truth"]}).pop(): "synthetic"}
            assert all("watermark" in image["evidence"] for image in pair["images"])

        second = stack.enter_context(live_server.client(reader_token(live_server, study_id, "pair-b")))
        for item in items:
            body = {"item": item, "answer": "left", "confidence": 2, "response_ms": 700}
            assert second.post(f"/api/studies/{study_id}/answers", json=body).status_code == 201
        with live_server.client() as admin:
            report = admin.get(f"/api/studies/{study_id}/report").json()
    assert report["mode"] == "pairs"
    ids = {name: rid for rid, name in report["reader_names"].items()}
    for name, chosen in (("pair-a", picks), ("pair-b", ["left"] * 4)):
        for metric, value in pair_metrics(truth, chosen).items():
            assert report["readers"][ids[name]][metric]["value"] == pytest.approx(value), (name, metric)
    for metric, value in pair_metrics(truth * 2, picks + ["left"] * 4).items():
        assert report["pooled"][metric]["value"] == pytest.approx(value), metric
    fooled = {i["item"]: i["fooled"] for i in report["items"]}
    for item, t, pick in zip(items, truth, picks, strict=True):
        assert fooled[item] == ((pick != t) + (t != "left")) / 2
    # Fleiss' kappa on the side chosen, by hand for two readers
    agree = np.mean([p == "left" for p in picks])
    share_left = (picks.count("left") + 4) / 8
    p_e = share_left**2 + (1 - share_left) ** 2
    assert report["agreement"]["fleiss_kappa"] == pytest.approx((agree - p_e) / (1 - p_e))
    assert len(report["answers"]) == 8 and all(a["time"] and a["response_ms"] for a in report["answers"])

    out = tmp_path / "pairs-report"
    assert main(["study", "report", study_id, "-o", str(out), "--data-dir", data]) == 0
    assert "proportion correct" in capsys.readouterr().out
    written = json.loads((out / "report.json").read_text())
    assert written["pooled"]["proportion_correct"]["value"] == pytest.approx(
        report["pooled"]["proportion_correct"]["value"]
    )
    assert "(2 readers, 4 shared pairs)" in (out / "report.html").read_text()


def test_a_reader_takes_a_pairs_study_in_the_browser(live_server, synthetic_dir, admin_id, page, screenshot):
    from radsynth.provenance.detector import SyntheticDetector
    from radsynth.serve.study import create_study

    manifest = resolve_manifest("demo:64")
    store = live_server.app.state.store
    detector = SyntheticDetector.load()
    study_id = create_study(
        store, live_server.data_dir, admin_id, manifest, synthetic_dir, 8, 4, detector=detector, pairs=True
    )
    key = {
        r["id"]: r["truth"] for r in store.read("SELECT * FROM study_items WHERE study_id = ?", (study_id,))
    }
    bodies, take = join_by_invitation(live_server, page, study_id, "Dr Pair")

    given: list[tuple[str, str]] = []  # the scripted reader: left, right, left, right
    for position in range(1, 5):
        expect(take).to_have_attribute("data-position", str(position))
        expect(page.locator("#study-position")).to_have_text(f"Pair {position} of 4")
        for side in ("left", "right"):
            page.wait_for_function(f"document.querySelector('#study-{side}').naturalWidth === 64")
        assert page.locator("#study-image").is_hidden() and page.locator("[data-truth]").count() == 0
        pick = "left" if position % 2 else "right"
        given.append((take.get_attribute("data-item"), pick))
        if position == 1:
            screenshot(page.locator("#study"), "study-pair")
        page.locator(f"#study-form input[name=answer][value={pick}]").check()
        page.locator("#study-form input[name=confidence][value='4']").check()
        if position == 4:
            answered = list(bodies)
        page.click("#study-submit")

    assert len({item for item, _ in given}) == 4
    assert sum('"item"' in text for text in answered) == 4
    for text in answered:  # no label, side or evidence before the last answer
        assert '"truth"' not in text and "watermark" not in text and "detector" not in text
    correct = sum(key[item] == pick for item, pick in given)
    expect(page.locator("#study-result .score")).to_have_text(
        f"You picked the real image in {correct} of 4 pairs."
    )
    pairs = page.locator("#study-result .revealed-pair")
    expect(pairs).to_have_count(4)
    for item, _ in given:
        truths = (
            pairs.locator(f"xpath=self::*[@data-pair='{item}']")
            .locator("figure")
            .evaluate_all("figs => figs.map(f => f.dataset.truth)")
        )
        assert truths == (["real", "synthetic"] if key[item] == "left" else ["synthetic", "real"])
    synthetic_evidence = page.locator("#study-result figure[data-truth=synthetic] .evidence").first
    expect(synthetic_evidence).to_contain_text("watermark")
    screenshot(page.locator("#study"), "study-pair-reveal")

    # the owner's page report shows the 2AFC rows
    page.goto(live_server.url + "/")
    page.fill("#token", live_server.token)
    page.click("#token-save")
    page.locator(f"#study-list li[data-study='{study_id}'] button", has_text="Report").click()
    cell = page.locator("#study-report tr[data-metric=proportion_correct] td").first
    expect(cell).to_contain_text(f"{correct / 4:.3f}")
