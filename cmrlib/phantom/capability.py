"""The phantom's registration: `cmr phantom` (synthetic studies with exact ground truth).

It has no `cmr run` step (it makes studies rather than reading them); its bundled study is
the demo's input and the Slicer sample data.
"""
from ..contract import Capability, Output

CAPABILITY = Capability(
    command="phantom",
    title="synthetic CMR phantom studies with exact ground truth",
    panel="CMRQuality",
    cli="cmrlib.phantom.cli",
    panel_help="<b>Sample data</b>: the bundled synthetic phantom study is in Slicer's Sample Data module (Cardiac MRI).",
    outputs=(
        Output("dicom", "folder", "DICOM series as a scanner writes them"),
        Output("truth.json", "json", "ground truth per series: tissue T1, masks, landmarks, artefact severities"),
        Output("truth", "folder", "ground-truth label maps and displacement fields (NRRD)"),
        Output("sheets", "folder", "contact sheets (PNG) of every series"),
    ),
)
