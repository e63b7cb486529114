"""CMRQuality's registration: LGE certainty and LV slice level of short-axis LGE stacks (seeds 000, 004)."""
from ..contract import Capability, Output, Step

CAPABILITY = Capability(
    command="quality",
    title="LGE certainty (equivocal slices) and LV slice level (too basal / LV / too apical) of short-axis LGE",
    panel="CMRQuality",
    cli="cmrlib.quality.cli",
    panel_help=("<b>LGE certainty and slice level</b>: choose a short-axis LGE stack (PSIR or magnitude) and "
                "<i>Apply</i>: `cmr quality certainty` classifies each slice as too basal / LV / too apical "
                "(ResNet) and, on the LV slices, the probability that the presence or absence of LGE is "
                "equivocal (EfficientNetV2), both with phantom-trained demonstration weights. The table colours "
                "flagged slices; the line under it is the stack's verdict (\"2 of 9 slices equivocal: consider "
                "repeating them or adding intersecting views\"). The operating threshold sets how sure the "
                "network must be before it flags (default favours precision). <i>Watch for new LGE</i> classifies "
                "every LGE volume loaded into the scene as it arrives. Non-LGE series are refused with the reason."),
    step=Step(run="cmrlib.quality.pipeline:run_step", series_kinds=("lge_psir", "lge_magnitude"),
              provides=("slice_levels", "lge_certainty")),
    trainers={"lge-certainty": "cmrlib.quality.train_certainty", "slice-level": "cmrlib.quality.train_slice_level"},
    architectures=("cmrlib.quality.efficientnetv2", "cmrlib.quality.resnet"),
    outputs=(
        Output("result.json", "json", "slices (index, class, probabilities, p_low_certainty, flag, reason), the "
                                      "stack sentence, threshold, seconds, model names / versions, notes"),
        Output("slices.csv", "csv", "per slice: index, class, probabilities, p_low_certainty, flag"),
        Output("quality.png", "png", "montage of the stack with each slice's class and flag"),
    ),
    reader="cmrlib.quality.outputs:read_result",
    report="cmrlib.quality.outputs:report_section",
    adapter="CMRQualityLib.quality:outputs_to_nodes",
    example="cmrlib.quality.outputs:write_example",
)
