"""The labelling tools' registration: `cmr label` (visual-analogue scoring and multiple-image ranking).

It has no `cmr run` step: it reads many studies into a pool that raters answer over days, and its
export is the `--data` folder of `cmr train lge-certainty | slice-level`.
"""
from ..contract import Capability, Output

CAPABILITY = Capability(
    command="label",
    title="labelling tools: visual-analogue LGE-likelihood scoring and multiple-image ranking, for several raters",
    panel="CMRQuality",
    cli="cmrlib.labelling.cli",
    panel_help=("<b>Labelling</b>: not in the panel yet — make a pool of anonymised short-axis slices with "
                "`cmr label create POOL.sqlite DIR… --mode vas|rank`; raters answer with `cmr label next` / "
                "`answer` (visual-analogue LGE likelihood 0–100, or batches of 8 ordered basal → apical); "
                "`cmr label serve` puts the slider and the 8-tile ranking in the raters' browsers; "
                "`cmr label status` shows coverage and agreement; `cmr label export` writes the folder "
                "`cmr train lge-certainty | slice-level --data` reads."),
    outputs=(
        Output("images", "folder", "one NRRD per stack with an exported slice (pixels, geometry, kind; anonymised)"),
        Output("summary.json", "json", "mode, counts, agreement, thresholds or cut points, notes"),
        Output("lge_scores.csv", "csv", "scoring: image,slice,score,rater (cmr train lge-certainty --data)",
               optional=True),
        Output("lge_classes.csv", "csv", "scoring: per image the mean score, raters, class at 25 / 75 and at the "
                                         "pool's own thresholds", optional=True),
        Output("bland_altman.png", "png", "scoring: inter-rater differences against means, bias and limits",
               optional=True),
        Output("slice_levels.csv", "csv", "ranking: image,slice,class,rating (cmr train slice-level --data)",
               optional=True),
        Output("ranking.csv", "csv", "ranking: rank, class, rating, views and volatility of every image",
               optional=True),
    ),
    reader="cmrlib.labelling.outputs:read_result",
    adapter="CMRQualityLib.labelling:outputs_to_nodes",
    example="cmrlib.labelling.outputs:write_example",
)
