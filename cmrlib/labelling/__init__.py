"""Labelling tools (CMRQuality) — `cmr label`: a site makes its own certainty and slice-level labels.

A *pool* (:mod:`.pool`, one SQLite file) holds anonymised slices of short-axis stacks read from
DICOM folders or image files (:mod:`.sources`), the raters and every answer. Two engines:
visual-analogue LGE-likelihood scoring with inter-rater agreement and thresholds from its limits
(:mod:`.vas`, card docs/methods/lge-certainty.md) and multiple-image ranking with ratings,
volatility, scheduling and cut points (:mod:`.ranking`, card docs/methods/slice-level.md). Every
front end runs a rater through :mod:`.tasks` (``next_task`` / ``answer``); :mod:`.outputs` exports
the folder `cmr train lge-certainty | slice-level --data` reads; :mod:`.web` (with the page
:mod:`.page`) serves both tools to browsers; :mod:`.simulate` has raters with known bias and
noise for tests and the benchmark.
"""
