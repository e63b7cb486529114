"""CMRQuality's left-atrial registration: diagnostic quality of 3-D LA LGE for fibrosis assessment (seed 001)."""
from ..contract import Capability, Output, Step

CAPABILITY = Capability(
    command="la-quality",
    title="left-atrial 3D LGE diagnostic-quality assessment (LA detector, attribute and quality heads, saliency)",
    panel="CMRQuality",
    cli="cmrlib.laquality.cli",
    panel_help=("<b>Left-atrial 3-D LGE quality</b>: choose an axial 3-D LGE volume and <i>Assess</i>: "
                "`cmr quality la` finds the slices with left atrium (U-Net, threshold t), scores each for myocardial "
                "nulling, sharpness, enhancement of aorta and valves and the quality for fibrosis assessment "
                "(ResNet-34 heads; phantom-trained demonstration weights) and gives the scan's verdict as the mode "
                "of its slices. The LA mask and the saliency (HiResCAM: where the network looked) are shown over the "
                "volume; the table lists each attribute's probability and decision. A 2-D image, a short-axis stack "
                "or a volume without atrium is refused with the reason; other spacings are resampled (said in the "
                "notes)."),
    step=Step(run="cmrlib.laquality.pipeline:run_step", series_kinds=("la_lge",), provides=("la_quality",)),
    trainers={"la-detector": "cmrlib.laquality.train_detector", "la-quality": "cmrlib.laquality.train_quality"},
    architectures=("cmrlib.laquality.networks",),
    outputs=(
        Output("result.json", "json", "diagnostic (bool), attributes (probability, decision, slice votes), "
                                      "slices_used, per-slice probabilities, variant, threshold, seconds, models, notes"),
        Output("slices.csv", "csv", "per slice: index, LA detected (peak probability), used, probabilities of "
                                    "diagnostic for the three attributes and the overall quality"),
        Output("la_mask.nrrd", "nrrd", "LA blood pool found by the detector (0/1) on the assessed grid"),
        Output("saliency.nrrd", "nrrd", "HiResCAM saliency of the verdict (what made the scan diagnostic or non-diagnostic; 0–1) on every used slice"),
        Output("saliency.png", "png", "the chosen slice with its saliency overlay and the LA contour"),
        Output("la_quality.png", "png", "montage of the used slices with LA contour and each slice's vote"),
    ),
    reader="cmrlib.laquality.outputs:read_result",
    report="cmrlib.laquality.outputs:report_section",
    adapter="CMRQualityLib.laquality:outputs_to_nodes",
    example="cmrlib.laquality.outputs:write_example",
)
