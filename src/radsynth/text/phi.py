"""Remove obvious personal identifiers from free text before it is stored anywhere.

A rule-based scrubber for the HIPAA Safe Harbor identifiers that turn up in report
snippets and prompts: names after a title or a "name:" label, dates, record / accession /
ID numbers, phone numbers, e-mail addresses and ages over 89. Each is replaced by
``[REDACTED]``; labels and titles are kept ("Dr [REDACTED]") so the text still reads.

It is deliberately conservative about clinical content: measurements ("23 mm",
"12 x 15 mm"), sequence names ("T1-weighted"), vertebral levels ("L4/5", "C5-C6") and
short numbers are left alone. It catches *obvious* identifiers only; it is not a
substitute for de-identifying a data set with a validated tool.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_NAME = r"(?:[A-Z]\.\s*)*[A-Z][A-Za-z'\-]+(?:\s+[A-Z]\.)?(?:\s+[A-Z][A-Za-z'\-]+){0,2}"

# (pattern, replacement); order matters: e-mails before names, labelled IDs before bare numbers.
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), REDACTED),
    # "Name: John Smith", "patient name = DOE^JOHN": the rest of the field
    (re.compile(r"(?i)(\b(?:patient(?:'s)?\s+)?name\s*[:=]\s*)[^,;\n]+"), rf"\1{REDACTED}"),
    # "Mr Smith", "Dr. A. Jones", "Patient John Smith": the capitalised words after a title
    (
        re.compile(rf"\b((?i:mr|mrs|ms|miss|mx|dr|prof|patient|pt)\.?\s+)(?!(?i:name|id|number)\b){_NAME}"),
        rf"\1{REDACTED}",
    ),
    # labelled identifiers: "MRN: 1234567", "Accession # A12345", "NHS number 943 476 5919", "ID 55-1234"
    (
        re.compile(
            r"(?i)(\b(?:mrn|mr\s*#|medical\s+record(?:\s+number)?|accession(?:\s+number)?|acc|nhs(?:\s+number)?|"
            r"ssn|social\s+security(?:\s+number)?|patient\s+id|id)\b\s*(?:no\.?|number|#)?\s*[:#=]?\s*)"
            r"[A-Z0-9][A-Z0-9\- ]{2,}[0-9]"
        ),
        rf"\1{REDACTED}",
    ),
    # dates: 2021-03-04, 03/04/2021, 4.3.21, 4 March 2021, March 4th, 2021, 20210304 (DICOM DA)
    (re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b"), REDACTED),
    (re.compile(r"\b\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})\b"), REDACTED),
    (re.compile(rf"(?i)\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}\.?,?\s+\d{{4}}\b"), REDACTED),
    (re.compile(rf"(?i)\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b"), REDACTED),
    (re.compile(r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b"), REDACTED),
    # phone numbers: +44 20 7946 0958, (555) 123-4567, 555.123.4567
    (
        re.compile(
            r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,5}){1,3}(?!\w|\.\d)"
        ),
        "",
    ),
    # ages over 89: "93-year-old", "aged 95", "97 yo", "age: 101"
    (re.compile(r"(?i)\b(?:9\d|1[0-4]\d)(?=\s*-?\s*(?:years?|yrs?|y)[\s-]*(?:old|o)\b|\s*y/?o\b)"), REDACTED),
    (re.compile(r"(?i)(\bage[d]?\s*[:=]?\s*)(?:9\d|1[0-4]\d)\b"), rf"\1{REDACTED}"),
    # any other run of 7+ digits is an identifier, not a measurement
    (re.compile(r"\b\d{7,}\b"), REDACTED),
]

_PHONE_INDEX = 9


def _phone(match: re.Match[str]) -> str:
    """A phone number has 9-15 digits; shorter groups ("12 15 mm", "3 4 5") are kept."""
    digits = sum(c.isdigit() for c in match.group())
    return REDACTED if 9 <= digits <= 15 else match.group()


def scrub_phi(text: str) -> str:
    """``text`` with obvious identifiers replaced by ``[REDACTED]``.

    >>> scrub_phi("Mr John Smith, MRN 12345678, seen 03/04/2021: tumour in the right upper lobe, 23 mm")
    'Mr [REDACTED], MRN [REDACTED], seen [REDACTED]: tumour in the right upper lobe, 23 mm'
    """
    for i, (pattern, replacement) in enumerate(_RULES):
        text = pattern.sub(_phone if i == _PHONE_INDEX else replacement, text)
    return text
