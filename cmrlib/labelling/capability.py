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
    panel_help=("<b>Labelling</b>: make a pool of anonymised short-axis slices with "
                "`cmr label create POOL.sqlite DIR… --mode vas|rank`, choose it and your rater name (Add rater "
                "registers a new one), Start / resume: a visual-analogue pool shows each image in the slice views "
                "with a slider without numbers (LGE likelihood, none … certain) and Submit score; a ranking pool "
                "shows batches of 8 thumbnails to drag from most basal (first) to most apical (last) and Submit "
                "order, then the cut-point questions (too basal / LV / too apical). Every answer is saved in the "
                "pool at once, so a rater resumes where they stopped; the same pool is answered from `cmr label "
                "next` / `answer` and in the raters' browsers (`cmr label serve`); `cmr label status` shows "
                "coverage and agreement; `cmr label export` writes the folder "
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
