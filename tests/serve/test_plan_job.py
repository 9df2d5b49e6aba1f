"""``POST /api/generate`` with a plan on a real server: a dataset job (images, a manifest
in the corpus format, the card), the server's limits applied to the plan's total, and
every bad plan a one-line 422."""

from __future__ import annotations

import json

import pytest

from radsynth.data.manifest import Record

BRAIN, CHEST = "axial brain MR, T1", "axial chest CT, lung window, tumour in the right lung"
PLAN = {
    "steps": 4,
    "items": [
        {"prompt": BRAIN, "n": 2, "labels": {"finding": "none"}},
        {"prompt": CHEST, "n": 1, "labels": {"finding": "tumour"}},
    ],
}


@pytest.mark.slow  # a 3-image dataset job through the queue (~10 s)
def test_a_plan_job_writes_a_dataset_with_its_manifest_and_card(live_server):
    with live_server.client() as client:
        job = client.post("/api/generate", json={"plan": PLAN, "seed": 3})
        assert job.status_code == 202, job.text
        assert job.json()["progress"]["total"] == 3  # counted as the plan's total
        done = live_server.wait(job.json()["id"])
        assert done["state"] == "done", done["error"]
        results = done["results"]
        assert [(i["index"], i["seed"]) for i in results["images"]] == [(0, 3), (1, 4), (2, 5)]
        assert results["counts"] == {"finding": {"none": 2, "tumour": 1}}
        files = {f["name"]: f["url"] for f in results["files"]}
        manifest = client.get(files["manifest.jsonl"]).text.splitlines()
        records = [Record.from_dict(json.loads(line)) for line in manifest]
        assert [r.split for r in records] == ["synthetic"] * 3 and records[2].labels == {"finding": "tumour"}
        card = client.get(files["dataset.json"]).json()
        assert card["counts"]["written"] == 3 and card["plan"]["document"] == PLAN
        assert client.get(results["images"][0]["png"]).content[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            {"plan": {"items": [{"prompt": BRAIN, "n": 17}]}},
            "plan: the plan asks for 17 images; at most 16 here",
        ),
        (
            {"plan": {"total": 10, "labels": {"finding": {"normal": 0.5, "fracture": 0.5}}}},
            "unknown value 'fracture'",
        ),
        ({"plan": {"total": 10, "labels": {"finding": {"normal": 4, "pneumonia": 5}}}}, "counts add up to 9"),
        (
            {"plan": {"items": [{"prompt": BRAIN, "n": 1, "model": "../../runs/ldm"}]}},
            "unknown model '../../runs/ldm'",
        ),
        ({"plan": {"items": [{"prompt": "x" * 501, "n": 1}]}}, "item 1: prompt is 501 characters long"),
        ({"plan": PLAN, "prompt": BRAIN}, "send a prompt or a plan, one of them"),
        ({"plan": PLAN, "n": 3}, "n does not go with a plan"),
        ({"plan": PLAN, "pacs": True}, "pacs is for prompt jobs"),
    ],
)
def test_bad_plans_get_one_line_422(live_server, body, problem):
    with live_server.client() as client:
        answer = client.post("/api/generate", json=body)
    assert answer.status_code == 422
    assert problem in answer.json()["detail"] and "\n" not in answer.json()["detail"]
