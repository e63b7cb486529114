"""Landmarks' registration: RV insertion / LV centre points, AHA segments, T1 per segment."""
from ..contract import Capability, Output, Step

CAPABILITY = Capability(
    command="landmarks",
    title="RV insertion / LV centre landmarks, AHA segments and myocardial T1 per segment",
    panel="CMRSegmentation",
    cli="cmrlib.landmarks.cli",
    panel_help=("<b>Landmarks</b> (this version: results only): `cmr landmarks` / `cmr run` results load as one "
                "markups point list per slice (\"LV centre\", \"RV insertion\") and the AHA segment map as a "
                "label volume; the two-stage network uses phantom-trained demonstration weights. Moving a point "
                "does not yet recompute the segments, and the panel has no Apply button for landmarks yet."),
    step=Step(run="cmrlib.landmarks.pipeline:run_step", series_kinds=("t1map", "lge_psir", "lge_magnitude"),
              uses=("myocardium_mask",), provides=("landmarks", "aha_segments")),
    trainers={"landmarks": "cmrlib.landmarks.train"},
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
