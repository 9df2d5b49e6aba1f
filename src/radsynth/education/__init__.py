"""Patient education: a handout from a free-text radiology report.

- ``findings``: the report's positive findings, read NegEx-style (negation, uncertainty,
  sections, repeats merged)
- ``plain_language``: a finding in plain words, and as a prompt in the shipped model's
  caption vocabulary
- ``handout``: ``make_handout`` draws each finding with a generator (``radsynth.generate``)
- ``render``: the one-page HTML and A4 PDF, every picture labelled SYNTHETIC

Nothing heavy is imported here; import what you need from its module.
"""
