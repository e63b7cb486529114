"""QCD's registration: the ensemble myocardium segmentation that predicts its own Dice (CMRSegmentation)."""
from ..contract import Capability, Output, Step

CAPABILITY = Capability(
    command="segment",
    title="QCD ensemble myocardium / blood-pool segmentation with predicted Dice and per-slice QC",
    panel="CMRSegmentation",
    cli="cmrlib.qcd.cli",
    panel_help=("<b>QCD segmentation</b>: pick a short-axis LGE, VNE or T1-map volume; Apply runs the six-U-Net "
                "ensemble (phantom-trained demonstration weights) and returns a segmentation with myocardium and "
                "blood-pool segments and a per-slice table of predicted Dice with a red / green QC column (below "
                "the threshold, 0.7 by default: review). Click a failed slice to show it and correct it with the "
                "Segment Editor; Export writes the image and the edited segmentation as a training pair for "
                "`cmr train qcd --data`."),
    step=Step(run="cmrlib.qcd.pipeline:run_step", series_kinds=("lge_psir", "lge_magnitude", "vne", "t1map"),
              provides=("myocardium_mask",)),
    trainers={"qcd": "cmrlib.qcd.train"},
    architectures=("cmrlib.qcd.unet",),
    outputs=(
        Output("labels.nrrd", "image", "0 background, 1 myocardium, 2 blood pool on the input grid; failed slices "
                                       "and predicted Dice in the header"),
        Output("result.json", "json", "per slice: index, predicted_dice, qc_pass, candidate, "
                                      "candidates_predicted_dice, reason, areas; seconds, model name / version"),
        Output("contours.png", "png", "contours over each slice with its predicted Dice and QC"),
    ),
    reader="cmrlib.qcd.outputs:read_result",
    report="cmrlib.qcd.outputs:report_section",
    adapter="CMRSegmentationLib.qcd:outputs_to_nodes",
    example="cmrlib.qcd.outputs:write_example",
)
