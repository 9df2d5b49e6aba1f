"""What a generation request may ask for, defined once: the bounds on prompt length, image
count, sampler steps and guidance (the generator kinds are the families' registry,
``radsynth.sampling.families.GENERATORS``; the output formats are
``radsynth.provenance.marking.FORMATS``, where each is marked).

The library enforces :data:`LIBRARY`; the CLI checks the same bounds before it loads a
model; the service checks its own tighter :class:`Bounds` (``serve.settings.Limits``),
which may narrow these but never widen them. So a request one front end accepts is never
refused by the library behind it, and no two front ends disagree on a range.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from radsynth.errors import InvalidInput

MAX_PROMPT_CHARS = 1000
MAX_IMAGES = 10_000
MAX_STEPS = 1000
# Classifier-free guidance scale: the shipped models sample at 4; far past 30 the guided
# prediction only saturates, so a larger value is a typo, not a setting.
MAX_GUIDANCE = 30.0


@dataclass(frozen=True)
class Bounds:
    """Upper bounds of one front end; every one at most the library's."""

    max_prompt_chars: int = MAX_PROMPT_CHARS
    max_images: int = MAX_IMAGES
    max_steps: int = MAX_STEPS
    max_guidance: float = MAX_GUIDANCE

    def __post_init__(self) -> None:
        for f in fields(self):
            value, top = getattr(self, f.name), f.default
            if not 0 < value <= top:
                raise ValueError(f"{f.name} must be in (0, {top}] (the library's bound), got {value}")

    def check(self, prompt: str, n: int, steps: int | None = None, guidance: float | None = None) -> str:
        """``prompt`` stripped, when the request is inside the bounds; ``InvalidInput``
        naming the first argument that is not. ``steps``/``guidance`` None: the model's
        defaults, checked by the library."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidInput("prompt is empty: describe the image to generate")
        if len(prompt.strip()) > self.max_prompt_chars:
            raise InvalidInput(
                f"prompt is {len(prompt.strip())} characters long; at most {self.max_prompt_chars}"
            )
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= self.max_images:
            raise InvalidInput(f"n must be an integer in 1..{self.max_images}, got {n!r}")
        self.check_sampling(steps, guidance)
        return prompt.strip()

    def check_sampling(self, steps: int | None, guidance: float | None) -> None:
        """Sampler steps in 1..max_steps and guidance in 0..max_guidance (None: not given)."""
        integer = isinstance(steps, int) and not isinstance(steps, bool)
        if steps is not None and not (integer and 1 <= steps <= self.max_steps):
            raise InvalidInput(f"steps must be an integer in 1..{self.max_steps}, got {steps!r}")
        if guidance is not None and not 0 <= guidance <= self.max_guidance:
            raise InvalidInput(f"guidance must be in 0..{self.max_guidance:g}, got {guidance!r}")


LIBRARY = Bounds()
