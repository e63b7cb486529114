"""CMRMotion logic headless on slicer-core: export an IRW sequence, run `cmr motion`, load the outputs."""
import numpy as np
import pytest
import slicer  # noqa: F401

from cmrlib import InputError
from cmrlib.cli import main
from cmrlib.mrml import browser_node_for, image_from_volume_node, new_scene, sequence_node_from_image
from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
from CMRMotionLib.logic import MotionLogic

pytestmark = pytest.mark.mrml


def test_motion_logic_round_trip(tmp_path):
    ph = Phantom(sample_subject(3, PhantomOptions(matrix=64, la=False, clean=True)))
    irw = ph.irw("mid", "native", "ShMOLLI", motion_severity=0.0).image
    irw.meta["kind"] = "irw"
    scene = new_scene()
    logic = MotionLogic(scene)
    seq = sequence_node_from_image(scene, irw, "ShMOLLI mid")
    path = logic.export_irw(seq, tmp_path)
    args = logic.motion_arguments(path, tmp_path / "out", "classical")
    assert main(args[:-1] + ["--quiet"]) == 0
    outputs = logic.load_results(tmp_path / "out", "ShMOLLI mid")
    t1 = image_from_volume_node(outputs.t1)
    assert t1.same_geometry(irw.frame(0), tol_mm=1e-4) and np.median(t1.array[t1.array > 0]) > 300
    assert outputs.r2_before is not None  # the before / after R² view
    assert outputs.corrected.GetNumberOfDataNodes() == 7 and browser_node_for(outputs.corrected) is not None
    assert outputs.dvf.GetNumberOfDataNodes() == 7
    display = outputs.t1.GetDisplayNode()
    assert (display.GetWindowLevelMin(), display.GetWindowLevelMax()) == (0.0, 2000.0)
    assert "classical" in outputs.summary_text()


def test_motion_logic_refuses_non_irw(tmp_path):
    scene = new_scene()
    with pytest.raises(InputError, match="expected an IRW sequence node"):
        MotionLogic(scene).export_irw(None, tmp_path)
    with pytest.raises(InputError, match="unknown method"):
        MotionLogic.motion_arguments("x.nrrd", tmp_path, "magic")
    assert not list(tmp_path.iterdir())
