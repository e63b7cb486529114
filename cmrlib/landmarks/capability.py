"""Landmarks' registration: RV insertion / LV centre points, AHA segments, T1 per segment."""
from ..contract import Capability, Output, Step

CAPABILITY = Capability(
    command="landmarks",
    title="RV insertion / LV centre landmarks, AHA segments and myocardial T1 per segment",
    panel="CMRSegmentation",
    cli="cmrlib.landmarks.cli",
    panel_help=("<b>Landmarks</b>: choose a short-axis T1 map or LGE volume and, for AHA segments, a myocardium "
                "mask (a label map or a segmentation such as the QCD result above); <i>Find landmarks</i> runs "
                "`cmr landmarks` (two-stage network, phantom-trained demonstration weights) and loads one editable "
                "markups point list per slice (\"LV centre\", \"RV insertion\"). The AHA segment map is shown as "
                "a coloured label layer, with the per-segment mean / median (T1 maps: ms) in a table and a "
                "bull's-eye in the panel; with <i>Live update</i> on, moving a point recomputes them. A slice "
                "whose points are missing or whose mask has no myocardium gets no segments, and the panel says "
                "why. A single slice needs its AHA level chosen."),
    step=Step(run="cmrlib.landmarks.pipeline:run_step", series_kinds=("t1map", "lge_psir", "lge_magnitude"),
              uses=("myocardium_mask",), provides=("landmarks", "aha_segments")),
    trainers={"landmarks": "cmrlib.landmarks.train", "landmarks-presence": "cmrlib.landmarks.presence"},
    architectures=("cmrlib.landmarks.resnetv2",),
    outputs=(
        Output("landmarks.json", "json", "per slice: LV centre / RV insertion (pixels [col,row] and LPS mm), "
                                         "confidence, reason when none"),
        Output("result.json", "json", "seconds, model name / version, notes, per-segment statistics"),
        Output("landmarks.png", "png", "the points over each slice"),
        Output("aha_segments.nrrd", "image", "AHA segment labels 1–17 on the image grid (with a mask)", optional=True),
        Output("segments.csv", "csv", "per AHA segment: mean, sd, median, pixels of the image values", optional=True),
        Output("bullseye.png", "png", "bull's-eye of the per-segment means (T1 maps: ms)", optional=True),
    ),
    reader="cmrlib.landmarks.outputs:read_result",
    report="cmrlib.landmarks.outputs:report_section",
    adapter="CMRSegmentationLib.landmarks:outputs_to_nodes",
    example="cmrlib.landmarks.outputs:write_example",
)
