"""The JSON bodies the API takes, typed strictly."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from radsynth import DEFAULT_FAMILY


class Strict(BaseModel):
    """Request bodies take JSON types as they are: ``n: true`` or ``seed: "5"`` is a 422,
    not silently 1 or 5 (a client that sends the wrong type has a bug worth seeing)."""

    model_config = ConfigDict(strict=True)


class GenerateRequest(Strict):
    prompt: str | None = None
    # or a dataset plan, its YAML form as JSON (radsynth.generate.plan): {"items": [{"prompt",
    # "n"}, ...]} or {"labels": {...}, "total": N}; n is then the plan's total
    plan: dict[str, Any] | None = None
    n: int = 4
    model: str = "ldm"
    weights: str = DEFAULT_FAMILY
    steps: int | None = None
    guidance: float | None = None
    seed: int = Field(0, ge=0, le=2**31 - 1)
    pacs: bool = False


class HandoutRequest(Strict):
    report: str
    n: int = 1
    seed: int = Field(0, ge=0, le=2**31 - 1)
    steps: int | None = None
    weights: str | None = None  # None: by the report (family_for: chest X-ray or CT / MR)


class EvaluateRequest(Strict):
    real: str
    synthetic: str
    train: str
    real_split: list[str] = []
    train_split: list[str] = []
    radiomics: bool = True
    bootstrap: int = Field(100, ge=1, le=1000)
    utility_steps: int = Field(300, ge=1, le=5000)
    seed: int = 0


class TokenRequest(Strict):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str]


class StudyAnswer(Strict):
    item: str = Field(min_length=1, max_length=64)
    answer: str  # real or synthetic
    confidence: int  # 1 (a guess) .. 5 (sure)
    response_ms: int  # from the image shown to the answer, measured by the page


class ReaderRequest(Strict):
    name: str = Field(min_length=1, max_length=100)


class InvitationRequest(Strict):
    hours: float = Field(72.0, gt=0)
