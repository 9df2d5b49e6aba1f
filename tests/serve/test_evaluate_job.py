"""An evaluation job over the API: a generate job's images against the demo corpus's held-out
and training manifests (a server-side data root), report and metrics downloadable."""

from __future__ import annotations

import json

import pytest

from radsynth.serve.settings import ServeSettings

from .conftest import start_server


@pytest.fixture(scope="module")
def server_with_corpus(tmp_path_factory):
    from radsynth.data.demo import build_demo

    corpus = build_demo(size=64).folder
    settings = ServeSettings(data_dir=tmp_path_factory.mktemp("serve-eval"), data_roots=(corpus,))
    server, stop = start_server(settings)
    yield server, corpus / "manifest.jsonl"
    stop()


def test_a_generate_job_is_evaluated_against_server_side_manifests(server_with_corpus):
    server, manifest = server_with_corpus
    with server.client() as client:
        prompt = "axial T1-weighted brain MR, no lesion visible"
        made = client.post("/api/generate", json={"prompt": prompt, "n": 12, "model": "gan"}).json()
        assert server.wait(made["id"])["state"] == "done"
        body = {
            "real": str(manifest),
            "real_split": ["test"],
            "synthetic": f"job:{made['id']}",
            "train": str(manifest),
            "train_split": ["train"],
            "radiomics": False,
            "bootstrap": 10,
            "utility_steps": 4,
        }
        job = client.post("/api/evaluate", json=body)
        assert job.status_code == 202, job.text
        done = server.wait(job.json()["id"], timeout=300)
        assert done["state"] == "done", done["error"]
        assert [f["name"] for f in done["results"]["files"]] == ["report.html", "metrics.json"]
        metrics = json.loads(client.get(done["results"]["files"][1]["url"]).content)
        assert metrics["sets"]["synthetic"]["n"] == 12
        assert "value" in metrics["fidelity"]["fid_domain"]
        assert "<h2>Fidelity</h2>" in client.get(done["results"]["report"]).text


@pytest.mark.parametrize("path", ["/etc/passwd", "../../../etc", "job:0123"])
def test_evaluation_reads_only_the_data_folders(server_with_corpus, path):
    server, manifest = server_with_corpus
    with server.client() as client:
        body = {"real": path, "synthetic": str(manifest), "train": str(manifest)}
        answer = client.post("/api/evaluate", json=body)
    assert answer.status_code in (404, 422)
    assert "data folders" in answer.json()["detail"] or "no job" in answer.json()["detail"]
