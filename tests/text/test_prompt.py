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


@pytest.mark.parametrize(
    ("prompt", "view", "sex", "age"),
    [
        ("PA chest X-ray of a 60-year-old man, right lower lobe pneumonia", "PA", "M", 60.0),
        ("Chest X-ray, AP view, adult, 48 years, female. Pneumonia.", "AP", "F", 48.0),
        ("posteroanterior radiograph, woman aged 71", "PA", "F", 71.0),
        ("lateral chest film of a 7 yo boy", "lateral", "M", 7.0),
        ("18-month-old girl, anteroposterior chest radiograph", "AP", "F", 1.5),
        ("Chest X-ray, frontal view, child, age 1-5 years. No finding.", None, None, None),
        ("axial chest CT, lung window, 23 mm", None, None, None),
    ],
)
def test_view_sex_and_age_of_a_radiograph_prompt(prompt, view, sex, age):
    a = parse_prompt(prompt)
    assert (a.view, a.sex, a.age_years) == (view, sex, age)
    assert not {"year", "old", "man", "pa"} & set(a.other_words)


def test_the_female_in_a_caption_is_not_a_male():
    assert parse_prompt("Chest X-ray, PA view, adult, 37 years, female. No finding.").sex == "F"


CXR = [
    "Chest X-ray, PA view, adult, 37 years, female. No finding.",
    "Chest X-ray, AP view, older adult, 70 years, male. Pneumonia with effusion.",
    "Chest X-ray, frontal view, child, age 1-5 years. Bacterial pneumonia.",
]


def test_views_sexes_and_ages_of_the_captions_bound_what_a_prompt_may_ask():
    vocab = vocabulary_from_captions(CXR)
    assert (vocab.view, vocab.sex, vocab.age_range_years) == ({"PA", "AP"}, {"F", "M"}, (1.0, 70.0))
    assert unknown_terms(parse_prompt("PA chest X-ray of a 60-year-old man, pneumonia"), vocab) == []
    assert unknown_terms(parse_prompt("lateral chest X-ray of a 95 year old woman"), vocab) == [
        "view 'lateral'",
        "age 95 years (training 1-70 years)",
    ]
    assert PromptVocabulary.from_dict(vocab.to_dict()) == vocab


def test_a_card_written_before_views_and_sexes_were_read_recovers_them_from_its_words():
    old = vocabulary_from_captions(CXR).to_dict()
    for key in ("view", "sex", "age_range_years"):
        del old[key]
    vocab = PromptVocabulary.from_dict(old)
    assert (vocab.view, vocab.sex, vocab.age_range_years) == ({"PA", "AP"}, {"F", "M"}, None)
    demo = PromptVocabulary.from_dict(
        {k: v for k, v in vocabulary_from_captions(DEMO).to_dict().items() if k != "sex"}
    )
    assert "sex 'M'" in unknown_terms(parse_prompt("axial chest CT of a man"), demo)


def test_the_domain_in_words():
    assert vocabulary_from_captions(CXR).domain() == "X-ray (DX) images of the chest"
    assert vocabulary_from_captions(DEMO).domain() == "CT or MR images of the brain, breast, chest or head"


def test_every_anatomy_named_counts_but_a_window_is_not_anatomy():
    from radsynth.text.prompt import named_anatomies

    assert named_anatomies("enlarged heart on a PA chest X-ray") == {"heart", "chest"}
    assert named_anatomies("axial head CT, brain window") == {"head"}
    assert named_anatomies("PA view, 60-year-old man") == frozenset()
