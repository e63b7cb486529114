"""CMRStressT1's registration: stress-to-rest T1 map registration and dT1 reactivity maps."""
from ..contract import Capability, Output, Step

CAPABILITY = Capability(
    command="stress",
    title="stress-to-rest T1 map registration (Swin-U-Net VoxelMorph) and dT1 stress T1 reactivity maps",
    panel="CMRStressT1",
    cli="cmrlib.stress.cli",
    panel_help=("<b>Stress T1 reactivity</b>: choose the rest and the stress T1 map of the same slice position(s) "
                "(scanner maps, or maps fitted by CMRMotion from IRW series), the rest map's myocardium (a label map "
                "or segmentation, e.g. the QCD result) and, for AHA segments, a segment map (the Landmarks "
                "result). <i>Apply</i> runs `cmr stress`: the stress map is registered to the rest map (Swin-U-Net "
                "VoxelMorph with phantom-trained demonstration weights; U-Net baseline, classical SimpleITK or none "
                "selectable) and dT1 = (stress − rest) / rest × 100 % is shown over the grey rest map in a "
                "diverging colour map (blue: lower, red: higher T1 under stress), with the per-slice and "
                "per-segment table and the bull's-eye (bands at 3 / 6 / 9 %; a normal response is a few percent)."),
    step=Step(run="cmrlib.stress.pipeline:run_step", series_kinds=("t1map", "irw"),
              uses=("myocardium_mask", "aha_segments", "t1_map"), provides=("dt1_map",)),
    trainers={"dt1": "cmrlib.stress.train"},
    architectures=("cmrlib.stress.swin_unet",),
    outputs=(
        Output("stress_registered.nrrd", "image", "stress T1 map (ms) registered to the rest map's grid"),
        Output("dt1_map.nrrd", "image", "dT1 (%) = (stress registered − rest) / rest × 100 on the rest grid"),
        Output("myocardium.nrrd", "image", "the rest map's myocardium the means are taken in (1)"),
        Output("result.json", "json", "dt1_slice_percent, segments (AHA id → mean dT1 %), dice_before / dice_after, "
                                      "per-slice values, method, model name / version, seconds, notes"),
        Output("dt1.png", "png", "per slice: rest, registered stress, dT1 over the grey rest map"),
        Output("segments.csv", "csv", "per AHA segment: mean, sd, median dT1 (%) and pixels", optional=True),
        Output("bullseye.png", "png", "bull's-eye of segmental dT1 (bands at 3 / 6 / 9 %)", optional=True),
        Output("aha_segments.nrrd", "image", "the AHA segments used (1–17, inside the myocardium)", optional=True),
    ),
    reader="cmrlib.stress.outputs:read_result",
    report="cmrlib.stress.outputs:report_section",
    adapter="CMRStressT1Lib.stress:outputs_to_nodes",
    example="cmrlib.stress.outputs:write_example",
)
