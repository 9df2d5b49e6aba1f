import pytest

from radsynth.text import PromptVocabulary, parse_prompt, unknown_terms, vocabulary_from_captions

DEMO = [
    "axial chest CT, lung window, mid thorax, tumour in the right lung, 23 mm",
    "axial T1-weighted brain MR, middle third of the brain, lesion in the left hemisphere, 12 mm",
    "axial head CT, brain window, upper third of the head, no lesion visible",
    "coronal breast MR, middle third of the breast, tumour in the left breast, 9 mm",
    "axial chest CT, soft-tissue window, lower thorax, no tumour visible",
]


def test_demo_caption_parses_fully():
    a = parse_prompt(DEMO[0])
    assert (a.modality, a.anatomy, a.plane, a.window, a.finding, a.side, a.size_mm) == (
        "CT",
        "chest",
        "axial",
        "lung",
        "tumour",
        "right",
        23.0,
    )
    b = parse_prompt(DEMO[1])
    assert (b.modality, b.contrast, b.anatomy, b.finding, b.side, b.size_mm) == (
        "MR",
        "T1",
        "brain",
        "lesion",
        "left",
        12,
    )


def test_window_names_do_not_become_anatomy():
    a = parse_prompt(DEMO[2])
    assert (a.anatomy, a.window, a.finding) == ("head", "brain", "none")
    assert parse_prompt(DEMO[4]).window == "soft_tissue"


@pytest.mark.parametrize(
    ("prompt", "attribute", "value"),
    [
        ("brain MRI", "modality", "MR"),
        ("T1w brain", "modality", "MR"),
        ("T1w brain", "contrast", "T1"),
        ("T2 weighted brain MR", "contrast", "T2"),
        ("proton density knee", "contrast", "PD"),
        ("T2 FLAIR brain", "contrast", "FLAIR"),
        ("post-contrast T1 brain MR", "contrast", "T1C"),
        ("chest x-ray", "modality", "DX"),
        ("CXR", "anatomy", "chest"),
        ("mammogram", "modality", "MG"),
        ("US of the liver", "modality", "US"),
        ("chest CT with a mass", "finding", "tumour"),
        ("chest CT, no tumour", "finding", "none"),
        ("normal brain MR", "finding", "none"),
        ("transverse brain CT", "plane", "axial"),
        ("lesion of 2.5 cm", "size_mm", 25.0),
        ("thoracic CT, mediastinal window", "window", "soft_tissue"),
    ],
)
def test_synonyms(prompt, attribute, value):
    assert getattr(parse_prompt(prompt), attribute) == value


def test_unknown_terms_name_what_training_never_saw():
    vocab = vocabulary_from_captions(DEMO)
    assert (
        unknown_terms(parse_prompt("axial MRI T1w brain, lesion in the right hemisphere, 20 mm"), vocab) == []
    )
    unknown = unknown_terms(parse_prompt("sagittal knee ultrasound with a fracture, 80 mm"), vocab)
    assert unknown == [
        "modality 'US'",
        "anatomy 'knee'",
        "plane 'sagittal'",
        "finding 'fracture'",
        "size 80 mm (training 9-23 mm)",
    ]
    assert "word 'gadolinium'" in unknown_terms(parse_prompt("brain MR with gadolinium"), vocab)


def test_vocabulary_round_trips_and_is_scrubbed():
    vocab = vocabulary_from_captions([*DEMO, "axial chest CT, Mr Johnson, tumour"])
    assert "johnson" not in vocab.words
    assert PromptVocabulary.from_dict(vocab.to_dict()) == vocab


def test_mr_title_is_not_the_mr_modality():
    assert parse_prompt("Mr Smith, axial chest CT").modality == "CT"
    assert parse_prompt("Mr. Smith: chest radiograph").modality == "DX"
    assert parse_prompt("axial brain MR").modality == "MR"
