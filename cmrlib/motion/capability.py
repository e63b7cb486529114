"""CMRMotion's registration: the one record the CLI, `cmr run`, the report and the panel read."""
from ..contract import Capability, Output, Step

CAPABILITY = Capability(
    command="motion",
    title="MOLLI/ShMOLLI T1 and R² maps, MOCOnet motion correction",
    panel="CMRMotion",
    cli="cmrlib.motion.cli",
    panel_help=("<b>T1 mapping</b>: pick an IRW (MOLLI/ShMOLLI) sequence and a motion correction "
                "(MOCOnet with phantom-trained demonstration weights, classical B-spline registration, "
                "or none); Apply writes the T1 map (ms, rainbow, 0–2000 ms native or 0–1000 ms post-contrast), the R² maps before and after "
                "correction, the corrected frames and the displacement fields as a grid-transform sequence."),
    step=Step(run="cmrlib.motion.pipeline:run_step", series_kinds=("irw",), uses=("myocardium_mask",),
              provides=("t1_map",)),
    trainers={"moconet": "cmrlib.motion.train"},
    architectures=("cmrlib.motion.moconet",),
    outputs=(
        Output("t1_map.nrrd", "image", "T1 map (ms) on the IRW grid"),
        Output("r2_map.nrrd", "image", "R² of the three-parameter fit after motion correction"),
        Output("r2_map_before.nrrd", "image", "R² of the same fit to the uncorrected frames", optional=True),
        Output("corrected.nrrd", "sequence", "motion-corrected IRW frames (InversionTime per frame)"),
        Output("dvf.nrrd", "displacement", "per-frame displacement fields (LPS mm)"),
        Output("result.json", "json", "myocardial T1 / R², method, frames, notes"),
        Output("t1_map.png", "png", "T1 map with colour bar"),
        Output("r2_before_after.png", "png", "R² before / after motion correction", optional=True),
    ),
    reader="cmrlib.motion.outputs:read_result",
    report="cmrlib.motion.outputs:report_section",
    adapter="CMRMotionLib.logic:outputs_to_nodes",
    example="cmrlib.motion.outputs:write_example",
)
