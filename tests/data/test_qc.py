import shutil
from dataclasses import replace

import numpy as np

from radsynth.data.manifest import load_manifest, write_manifest
from radsynth.data.qc import check_manifest
from radsynth.io import Image, read_image, write_png


def _copy_corpus(corpus, tmp_path, n=40):
    """A small real corpus: the first ``n`` demo records and their PNGs."""
    records = [r for r in corpus.records if r.window in (None, "brain")][:n]
    for r in records:
        (tmp_path / r.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(corpus.folder / r.path, tmp_path / r.path)
    return records


def test_demo_manifest_passes(demo_corpus):
    report = check_manifest(demo_corpus.manifest)
    assert report.ok and not report.has_leak, report.problems()
    assert report.records == len(demo_corpus.records) and not report.near_duplicates


def test_finds_duplicates_leaks_missing_and_unreadable(demo_corpus, tmp_path):
    records = _copy_corpus(demo_corpus, tmp_path)
    original = records[5]
    # Exact duplicate: the same pixels re-saved with other text chunks, filed as another subject.
    pixels = read_image(tmp_path / original.path)
    write_png(Image(pixels.array), tmp_path / "dup.png", bits=16)
    # Near duplicate: the same real slice slightly brightened and with a little noise.
    rng = np.random.default_rng(0)
    near = pixels.array.astype(np.float64) * 0.97 + 600 + rng.normal(0, 300, pixels.array.shape)
    write_png(Image(np.clip(near, 0, 65535)), tmp_path / "near.png", bits=16, value_range=(0, 65535))
    # Unreadable: a truncated copy of a real PNG.
    data = (tmp_path / records[6].path).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 3])
    extra = [
        replace(original, path="dup.png", subject="someone-else", split="test"),
        replace(original, path="near.png", subject="another", split="train"),
        replace(records[6], path="cut.png", subject="cut"),
        replace(records[7], path="gone.png", subject="gone"),
        replace(records[8], split="val" if records[8].split != "val" else "test"),  # subject leak
    ]
    path = write_manifest(records + extra, tmp_path / "manifest.jsonl")
    report = check_manifest(path)
    assert report.exact_duplicates == [sorted([original.path, "dup.png"])]
    assert report.duplicate_leaks == report.exact_duplicates or original.split == "test"
    assert [(a, b) for a, b, _ in report.near_duplicates if "near.png" in (a, b)]
    assert all(r >= 0.98 for *_, r in report.near_duplicates)
    assert report.missing == ["gone.png"]
    assert [p for p, _ in report.unreadable] == ["cut.png"]
    assert report.subject_leaks == {records[8].subject: sorted({records[8].split, extra[4].split})}
    assert report.has_leak and not report.ok
    assert len(load_manifest(path)) == len(records) + len(extra)
