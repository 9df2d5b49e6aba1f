"""Bad reports get one clear line, from the library and from ``radsynth handout``, before
any folder is made or model loaded: empty, over the size limit, not in English, and a
report with no finding (nothing to illustrate)."""

from __future__ import annotations

import pytest

from radsynth.cli import main
from radsynth.education.findings import MAX_REPORT_CHARS, check_report
from radsynth.education.handout import make_handout
from radsynth.errors import InvalidInput

# our own translations of "No pleural effusion. Normal heart size. Lungs clear."
OTHER_LANGUAGES = {
    "german": "Kein Pleuraerguss. Herz normal groß. Lunge ohne Infiltrate.",
    "spanish": "No hay derrame pleural. Corazón de tamaño normal. Pulmones sin consolidación.",
    "french": "Pas d'épanchement pleural. Cœur de taille normale. Poumons clairs.",
    "chinese": "无胸腔积液。心脏大小正常。双肺清晰。",
    "russian": "Плеврального выпота нет. Сердце нормальных размеров. Лёгкие чистые.",
}
LONG = "FINDINGS: Small right pleural effusion. " + "The heart size is normal. " * 800
BAD = {
    "empty": ("", "the report is empty"),
    "blank": (" \n\t ", "the report is empty"),
    "too long": (LONG, f"the limit is {MAX_REPORT_CHARS:,}"),
    **{lang: (text, "does not read as English") for lang, text in OTHER_LANGUAGES.items()},
    "no finding": ("FINDINGS: Lungs are clear. No effusion or pneumothorax.", "nothing to illustrate"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_report_is_one_line_and_makes_nothing(name, tmp_path):
    text, message = BAD[name]
    with pytest.raises(InvalidInput, match=message) as err:
        make_handout(text, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["empty", "too long", "german", "chinese", "no finding"])
def test_the_cli_prints_one_line(name, tmp_path, capsys):
    report = tmp_path / "report.txt"
    report.write_text(BAD[name][0], encoding="utf-8")
    assert main(["handout", str(report), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert BAD[name][1] in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "text",
    [
        "Clear lungs. Normal heart size.",  # telegraphic English
        "Cardiomegaly.",  # one word
        "FINDINGS: Borderline cardiomegaly. Midline sternotomy XXXX. Enlarged pulmonary arteries.",
        "The report of Dr. Müller: stable calcified granuloma in the right upper lobe.",  # a foreign name
    ],
)
def test_short_or_redacted_english_is_read(text):
    assert check_report(text) == text
