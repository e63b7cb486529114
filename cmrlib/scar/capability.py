"""Scar quantification's registration: LGE–cine fusion U-Net, LGE-only U-Net, n-SD and FWHM (CMRSegmentation)."""
from ..contract import Capability, Output, Step

CAPABILITY = Capability(
    command="scar",
    title="LGE scar quantification (%scar, myocardial and scar volume): LGE–cine fusion U-Net, LGE-only U-Net, "
          "n-SD and FWHM",
    panel="CMRSegmentation",
    cli="cmrlib.scar.cli",
    panel_help=("<b>Scar</b>: choose the short-axis LGE stack and, for the fusion network, the cine stack of the "
                "same study (each LGE slice is matched automatically to the cine frame at its trigger time and the "
                "nearest cine slice; the per-slice table shows the match and its distance). LV centres align the "
                "pair; move the \"LGE LV centre\" / \"cine LV centre\" points and run again to correct them. Optionally a myocardium (the QCD result) "
                "for the classical methods and an AHA segment map (the Landmarks result). <i>Apply</i> runs "
                "`cmr scar` (U-Nets with phantom-trained demonstration weights) and shows myocardium and scar "
                "segments over the LGE with the aligned cine beside it, the per-slice table, %scar, myocardial "
                "and scar volume (mL), and the methods side by side (fusion, LGE-only, 2 / 3 / 5 SD above "
                "remote myocardium, FWHM). Scar is present when %scar > 1 %."),
    step=Step(run="cmrlib.scar.pipeline:run_step", series_kinds=("lge_psir", "lge_magnitude"),
              uses=("myocardium_mask", "aha_segments", "landmarks"), provides=("scar",)),
    trainers={"scar": "cmrlib.scar.train"},
    architectures=("cmrlib.scar.unet",),
    outputs=(
        Output("labels.nrrd", "image", "0 background, 1 normal myocardium, 2 scar on the LGE grid"),
        Output("slices.csv", "csv", "per LGE slice: level, status, myocardium / scar (mL), %scar, the matched cine "
                                    "slice / frame and distance (mm), LV-centre source, the other methods' %scar"),
        Output("methods.csv", "csv", "every method run: %scar, myocardial and scar volume (mL), scar present, slices"),
        Output("result.json", "json", "percent_scar, myocardial_volume_ml, scar_volume_ml, scar_present, "
                                      "slices_segmented, slices_total, complete, method, model name / version, "
                                      "seconds, timing, per-slice and per-method values, segments, notes"),
        Output("scar.png", "png", "scar (red) and myocardium (green) over each LGE slice, the aligned cine beside"),
        Output("cine_aligned.nrrd", "image", "the matched cine frames on the LGE grid, LV-centre aligned",
               optional=True),
        Output("segments.csv", "csv", "per AHA segment: %scar, myocardium and scar (mL)", optional=True),
        Output("bullseye.png", "png", "bull's-eye of %scar per AHA segment", optional=True),
        Output("aha_segments.nrrd", "image", "the AHA segments used (1–17)", optional=True),
    ),
    reader="cmrlib.scar.outputs:read_result",
    report="cmrlib.scar.outputs:report_section",
    adapter="CMRSegmentationLib.scar:outputs_to_nodes",
    example="cmrlib.scar.outputs:write_example",
)
