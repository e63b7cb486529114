"""LGE certainty (seed 000) and LV slice level (seed 004) of short-axis LGE stacks — `cmr quality`.

:mod:`.pipeline` (`classify_stack`, the `cmr run` step), :mod:`.outputs` (files, montage,
report), :mod:`.watch` (`cmr quality watch`), the networks :mod:`.efficientnetv2` and
:mod:`.resnet`, the card's image preparation :mod:`.preprocess`, training data with simulated
raters :mod:`.data`, `cmr train lge-certainty / slice-level` :mod:`.train`.
"""
