"""``radsynth data ...`` through ``radsynth.cli.main``: exit codes and one-line errors."""

from dataclasses import replace

from radsynth.cli import main
from radsynth.data.manifest import write_manifest


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


def test_demo_prints_summary_and_manifest_path(demo_build, capsys, monkeypatch):
    corpus, _, folder, cache = demo_build
    monkeypatch.setenv("RADSYNTH_CACHE", str(cache))
    assert main(["data", "demo", "-o", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "cached in" in out and str(corpus.manifest) in out.replace("\n", "")
    for value in ("CT", "MR", "train", "test"):
        assert value in out


def test_demo_rejects_other_sizes(capsys):
    assert main(["data", "demo", "--size", "100"]) == 1
    assert "--size must be one of 64, 128" in _one_error_line(capsys.readouterr().err)


def test_qc_exit_codes(demo_corpus, tmp_path, capsys):
    assert main(["data", "qc", str(demo_corpus.manifest)]) == 0
    assert "no split leak" in capsys.readouterr().out
    records = list(demo_corpus.records)
    moved = next(i for i, r in enumerate(records) if r.split == "train")
    records[moved] = replace(records[moved], split="test")
    leaky = write_manifest(records, demo_corpus.folder / "leaky.jsonl")
    try:
        assert main(["data", "qc", str(leaky)]) == 1
        captured = capsys.readouterr()
        assert f"{records[moved].subject}: subject in splits test, train" in captured.out
        assert "split leak" in _one_error_line(captured.err)
    finally:
        leaky.unlink()


def test_qc_of_a_broken_manifest_is_one_line(tmp_path, capsys):
    bad = tmp_path / "manifest.jsonl"
    bad.write_text('{"path": "a.png"}\n', encoding="utf-8")
    assert main(["data", "qc", str(bad)]) == 1
    assert f"{bad}: line 1: missing required field(s)" in _one_error_line(capsys.readouterr().err)


def test_ingest_ok_and_errors(mr_series, tmp_path, capsys):
    assert main(["data", "ingest", str(mr_series), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "Quality control" in out and str(tmp_path / "out" / "manifest.jsonl") in out.replace("\n", "")
    (tmp_path / "empty").mkdir()
    assert main(["data", "ingest", str(tmp_path / "empty"), "-o", str(tmp_path / "o2")]) == 1
    assert "no image files found" in _one_error_line(capsys.readouterr().err)
    assert main(["data", "ingest", str(tmp_path / "missing"), "-o", str(tmp_path / "o3")]) == 1
    assert f"{tmp_path / 'missing'}: not found" in _one_error_line(capsys.readouterr().err)
