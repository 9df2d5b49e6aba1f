"""The audit log: every generated output is logged; a changed, removed or added line is found."""

from __future__ import annotations

import json

import pytest

from radsynth.cli import main
from radsynth.errors import InvalidInput
from radsynth.provenance import append_entries, check_log, find_output
from radsynth.provenance.audit import sha256_file


@pytest.fixture
def log(tmp_path):
    files = []
    for i in range(3):
        f = tmp_path / f"out{i}.png"
        f.write_bytes(bytes([i]) * 100)
        files.append(f)
    path = tmp_path / "audit.jsonl"
    append_entries(
        [{"output_id": f"id{i}", "model_id": "m", "prompt": "p", "files": [f]} for i, f in enumerate(files)],
        path,
    )
    append_entries([{"output_id": "id3", "model_id": "m", "prompt": "q", "files": [files[0]]}], path)
    return path


def test_an_intact_log_checks_and_finds_outputs(log, tmp_path):
    report = check_log(log)
    assert report.ok and report.lines == 4
    entry = find_output("id1", log)
    assert entry["files"] == {"out1.png": sha256_file(tmp_path / "out1.png")}
    assert "p" not in json.dumps(entry["prompt_sha256"])  # only the hash is stored


def _lines(log):
    return log.read_text().splitlines()


def test_a_changed_line_is_found(log):
    lines = _lines(log)
    lines[1] = lines[1].replace('"model_id":"m"', '"model_id":"x"')
    log.write_text("\n".join(lines) + "\n")
    report = check_log(log)
    assert not report.ok and report.line == 2 and "changed" in report.problem


def test_a_removed_line_in_the_middle_or_at_the_end_is_found(log):
    lines = _lines(log)
    log.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    assert not check_log(log).ok
    log.write_text("\n".join(lines[:3]) + "\n")
    report = check_log(log)
    assert not report.ok and "ends early" in report.problem


def test_the_cli_exits_non_zero_on_a_tampered_log(log, capsys):
    assert main(["audit", "check", "--log", str(log)]) == 0
    lines = _lines(log)
    log.write_text("\n".join([lines[0], lines[2], lines[1], lines[3]]) + "\n")
    assert main(["audit", "check", "--log", str(log)]) == 1
    assert "tampered" in capsys.readouterr().err


def test_a_missing_log_is_one_clear_error(tmp_path):
    with pytest.raises(InvalidInput, match="no audit log"):
        check_log(tmp_path / "none.jsonl")


def test_one_audit_index_follows_its_log_as_it_grows_and_when_it_is_tampered_with(tmp_path):
    """A long-running service keeps one index: it sees new outputs and a broken chain
    without being rebuilt, and re-reads the log only when the file changed."""
    from radsynth.provenance.verify import AuditIndex

    log, image = tmp_path / "audit.jsonl", tmp_path / "x.png"
    image.write_bytes(b"pixels")
    index = AuditIndex(log)
    assert index.lookup("aaaaaaaa") is None and not index.problem  # no log yet
    append_entries([{"output_id": "aaaaaaaa11", "model_id": "m", "prompt": "p", "files": [image]}], log)
    assert index.lookup("aaaaaaaa")["model_id"] == "m"
    append_entries([{"output_id": "bbbbbbbb22", "model_id": "n", "prompt": "p", "files": [image]}], log)
    assert index.lookup("bbbbbbbb")["model_id"] == "n" and not index.problem
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0].replace('"model_id":"m"', '"model_id":"mm"'), lines[1]]) + "\n")
    assert index.lookup("aaaaaaaa")["model_id"] == "mm" and "failed its check" in index.problem
