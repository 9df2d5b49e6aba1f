"""``GET /api/models``: the shipped generators with their cards and sampling defaults, the
default family (``radsynth.DEFAULT_FAMILY``) first, so a client that takes the first LDM
draws what the example prompts ask for."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from radsynth import DEFAULT_FAMILY
from radsynth.serve.deps import Caller

router = APIRouter(prefix="/api")


@router.get("/models")
def models(_: Caller) -> dict[str, Any]:
    from radsynth.generate import list_models
    from radsynth.sampling import SamplingDefaults

    out = []
    for shipped in sorted(list_models(), key=lambda m: m.name != DEFAULT_FAMILY):
        card = shipped.card().to_dict()
        defaults = SamplingDefaults(**((card.get("task_info") or {}).get("sampling") or {}))
        ldm = shipped.kind == "ldm"
        out.append(
            {
                "name": shipped.name,
                "kind": shipped.kind,
                "default": shipped.name == DEFAULT_FAMILY,
                "model_id": card.get("model_id"),
                "steps": defaults.steps if ldm else None,
                "guidance": defaults.guidance if ldm else None,
                "card": card,
            }
        )
    return {"models": out}
