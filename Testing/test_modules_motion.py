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


def _outputs_dict(post_contrast: bool = False, with_before: bool = True) -> dict:
    """The dict shape of cmrlib.motion.outputs.read_result, built in memory (2 slices, 3 frames)."""
    from cmrlib import Image

    rng = np.random.default_rng(7)
    spacing, origin, direction = (1.5, 1.25, 8.0), (-20.0, 10.0, 30.0), np.eye(3)
    t1_values = rng.uniform(300, 600, (2, 8, 6)) if post_contrast else rng.uniform(900, 1500, (2, 8, 6))
    t1 = Image(t1_values.astype(np.float32), spacing, origin, direction)
    r2 = Image(rng.uniform(0.9, 1.0, (2, 8, 6)).astype(np.float32), spacing, origin, direction)
    tis = [100.0, 1100.0, 2100.0]
    corrected = Image(rng.uniform(0, 500, (3, 2, 8, 6)).astype(np.float32), spacing, origin, direction, True, {},
                      [{"InversionTime": t} for t in tis])
    dvf = np.zeros((3, 2, 8, 6, 3), np.float32)
    dvf[1, ..., 0] = 1.5  # frame 1 shifted 1.5 mm along L
    return {"t1": t1, "r2": r2, "r2_before": r2.with_array(r2.array - 0.05) if with_before else None,
            "corrected": corrected, "dvf": dvf, "dvf_grid": t1,
            "summary": {"method": "moconet", "n_frames": 3, "seconds": 0.5, "inversion_times_ms": tis,
                        "t1_myocardium_ms": float(np.median(t1_values)), "r2_myocardium_mean": 0.95, "notes": []}}


def test_adapter_builds_nodes_from_the_reader_dict():
    """outputs_to_nodes (the record's adapter) on the reader's dict shape, without files."""
    from cmrlib.capabilities import capability
    from cmrlib.contract import resolve
    from cmrlib.mrml import image_from_volume_node
    from CMRMotionLib.logic import outputs_to_nodes

    assert resolve(capability("motion").adapter) is outputs_to_nodes
    scene = new_scene()
    outputs = outputs_to_nodes(scene, _outputs_dict(), "SAX mid")
    assert outputs.t1.GetName() == "SAX mid T1 map" and outputs.r2_before is not None
    assert np.allclose(image_from_volume_node(outputs.t1).array, _outputs_dict()["t1"].array)
    assert outputs.corrected.GetNumberOfDataNodes() == 3 and outputs.dvf.GetNumberOfDataNodes() == 3
    assert outputs.dvf.GetNthIndexValue(2) == "2100"
    assert set(outputs.nodes()) == {"t1", "r2", "r2_before", "corrected", "dvf"}
    display = outputs.t1.GetDisplayNode()
    assert (display.GetWindowLevelMin(), display.GetWindowLevelMax()) == (0.0, 2000.0)
    # post-contrast maps get the report's post-contrast window; no correction: no R² before
    post = outputs_to_nodes(scene, _outputs_dict(post_contrast=True, with_before=False))
    assert post.r2_before is None and "r2_before" not in post.nodes()
    assert post.t1.GetName() == "IRW T1 map"  # no name and no series in the summary
    assert post.t1.GetDisplayNode().GetWindowLevelMax() == 1000.0


def test_adapter_names_what_the_result_lacks():
    from CMRMotionLib.logic import outputs_to_nodes

    broken = _outputs_dict()
    del broken["dvf_grid"]
    broken["corrected"] = None
    scene = new_scene()
    n_nodes = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="lacks corrected, dvf_grid"):
        outputs_to_nodes(scene, broken, "x")
    assert scene.GetNumberOfNodes() == n_nodes


def test_panel_device_reaches_the_motion_worker(tmp_path):
    """The worker command the panel builds carries the device choice (--device and CMR_DEVICE):
    a GPU request reaches MOCOnet's model loading in the worker (on a machine without CUDA
    cmrlib says it falls back to the CPU); a CPU request runs without that warning."""
    import torch

    from CMRCommonLib.device_choice import DeviceChoice
    from CMRCommonLib.runner import SubprocessRunner, worker_command
    from cmrlib.motion.pipeline import moconet_installed

    if not moconet_installed():
        pytest.skip("MOCOnet weights are not installed")
    ph = Phantom(sample_subject(3, PhantomOptions(matrix=48, la=False, clean=True)))
    irw = ph.irw("mid", "native", "ShMOLLI", motion_severity=0.0).image
    scene = new_scene()
    logic = MotionLogic(scene)
    path = logic.export_irw(sequence_node_from_image(scene, irw, "ShMOLLI mid"), tmp_path)
    for choice in (DeviceChoice.GPU, DeviceChoice.CPU):
        out = tmp_path / choice.value
        args, env = worker_command(logic.motion_arguments(path, out, "moconet"), choice)
        assert args[-2:] == ["--device", choice.value] and env == {"CMR_DEVICE": choice.value}
        result = SubprocessRunner(args, extra_env=env).run(timeout_s=300)
        assert result.returncode == 0, result.error_text(10)
        fell_back = "device 'cuda' requested but no CUDA GPU is available" in result.stderr
        assert fell_back == (choice is DeviceChoice.GPU and not torch.cuda.is_available()), result.stderr[-2000:]
        assert logic.load_results(out, choice.value).summary["method"] == "moconet"
