"""A tiny synthetic CMR DICOM study and the checks run on it (Qt-free).

Shared by the pytest suite (headless, slicer-core wheel) and the modules' self-tests inside
Slicer, so that both run the same assertions. The study is small on purpose (tens of kB):

* series 3 "ShMOLLI": IRW, 1 slice x 7 frames, InversionTime per frame (ms), oblique
  short-axis geometry;
* series 5 "LGE PSIR": 3 slices, one image each (a volume);
* series 7 "cine SAX": 2 slices x 5 cardiac phases, TriggerTime per frame (ms).

Pixel values encode their position (``1000*slice + 10*row + col`` plus ``100*frame``) so a
check can tell a transposed or flipped array from a correct one.
"""
from __future__ import annotations

import unittest
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: ShMOLLI sampling in acquisition order: 5 images after the 1st inversion, 1 after the 2nd
#: and the 3rd (ms). Loaded frames are ordered by inversion time.
SHMOLLI_TIS_MS: tuple[float, ...] = (100.0, 1100.0, 2100.0, 3100.0, 4100.0, 180.0, 260.0)
CINE_TRIGGER_TIMES_MS: tuple[float, ...] = (0.0, 160.0, 320.0, 480.0, 640.0)
ROWS, COLS = 12, 10
#: (col, row, slice) spacing in mm
SPACING_MM: tuple[float, float, float] = (1.5, 1.25, 8.0)
ORIGIN_LPS_MM: tuple[float, float, float] = (-31.5, 12.25, 40.0)


def oblique_direction() -> np.ndarray:
    """A short-axis-like oblique orientation (columns: col, row, slice unit vectors, LPS)."""
    a, b = np.deg2rad(30.0), np.deg2rad(-20.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(b), -np.sin(b)], [0.0, np.sin(b), np.cos(b)]])
    return rz @ rx


def position_pattern(n_slices: int, frame: int = 0) -> np.ndarray:
    """``[slice, row, col]`` array with value ``1000*slice + 10*row + col + 100*frame``."""
    s, r, c = np.meshgrid(np.arange(n_slices), np.arange(ROWS), np.arange(COLS), indexing="ij")
    return (1000 * s + 10 * r + c + 100 * frame).astype(np.float32)


@dataclass
class SyntheticSeries:
    """What was written for one series and what loading it must give."""

    description: str
    series_number: int
    kind: str
    n_slices: int
    n_frames: int
    files: list[Path] = field(default_factory=list)
    frame_times_ms: tuple[float, ...] = ()  #: sorted InversionTime (IRW) / TriggerTime (cine)


@dataclass
class SyntheticStudy:
    """The folder and its series, keyed by kind."""

    folder: Path
    series: dict[str, SyntheticSeries]


def write_synthetic_study(folder: str | Path) -> SyntheticStudy:
    """Write the three series into ``folder`` (created if needed) with :func:`cmrlib.io.write_dicom_series`."""
    from cmrlib.image import Image
    from cmrlib.io import StudyInfo, write_dicom_series

    folder = Path(folder)
    study = StudyInfo.new("slicercmr-testing")
    direction = oblique_direction()
    out: dict[str, SyntheticSeries] = {}

    irw = SyntheticSeries("ShMOLLI", 3, "irw", 1, len(SHMOLLI_TIS_MS),
                          frame_times_ms=tuple(sorted(SHMOLLI_TIS_MS)))
    frames = np.stack([position_pattern(1, k)[0] for k in range(irw.n_frames)])
    image = Image(frames, SPACING_MM, ORIGIN_LPS_MM, direction, True,
                  {"SeriesDescription": irw.description},
                  [{"InversionTime": ti, "TriggerTime": 400.0} for ti in SHMOLLI_TIS_MS])
    irw.files = write_dicom_series(image, folder / "irw", description=irw.description,
                                   series_number=irw.series_number, study=study)
    out["irw"] = irw

    lge = SyntheticSeries("LGE PSIR", 5, "lge_psir", 3, 1)
    image = Image(position_pattern(3), SPACING_MM, ORIGIN_LPS_MM, direction, False,
                  {"SeriesDescription": lge.description})
    lge.files = write_dicom_series(image, folder / "lge", description=lge.description,
                                   series_number=lge.series_number, study=study,
                                   image_type=("ORIGINAL", "PRIMARY", "M", "PSIR"))
    out["lge_psir"] = lge

    cine = SyntheticSeries("cine SAX", 7, "cine", 2, len(CINE_TRIGGER_TIMES_MS),
                           frame_times_ms=CINE_TRIGGER_TIMES_MS)
    frames = np.stack([position_pattern(2, k) for k in range(cine.n_frames)])
    image = Image(frames, SPACING_MM, ORIGIN_LPS_MM, direction, True,
                  {"SeriesDescription": cine.description},
                  [{"TriggerTime": t} for t in CINE_TRIGGER_TIMES_MS])
    cine.files = write_dicom_series(image, folder / "cine", description=cine.description,
                                    series_number=cine.series_number, study=study)
    out["cine"] = cine
    return SyntheticStudy(folder, out)


def expected_ijk_to_ras() -> np.ndarray:
    """4x4 IJK-to-RAS matrix the loaded nodes must have (LPS geometry with x, y negated)."""
    lps = np.eye(4)
    lps[:3, :3] = oblique_direction() @ np.diag(SPACING_MM)
    lps[:3, 3] = ORIGIN_LPS_MM
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def node_ijk_to_ras(volume_node: Any) -> np.ndarray:
    """The IJK-to-RAS matrix of a volume node as a numpy array."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])


def check_scan(tc: unittest.TestCase, logic: Any, study: SyntheticStudy) -> None:
    """The scan found and classified the three series; the module's kinds are listed first."""
    scan = logic.scan(study.folder)
    tc.assertEqual(len(scan.series), 3, [s.summary() for s in scan.series])
    kinds = {s.kind: s for s in scan.series}
    tc.assertEqual(set(kinds), {"irw", "lge_psir", "cine"})
    irw = kinds["irw"]
    tc.assertEqual(irw.subtype, "ShMOLLI")
    tc.assertEqual(irw.n_frames, 7)
    tc.assertEqual(sorted(irw.inversion_times_ms), sorted(SHMOLLI_TIS_MS))
    rows = logic.series_rows()
    tc.assertEqual(len(rows), 3)
    used = [r.used_by_module for r in rows]
    tc.assertEqual(used, sorted(used, reverse=True), "rows of the module's kinds must come first")
    for row in rows:
        tc.assertEqual(row.used_by_module, row.kind in logic.USED_KINDS)
        tc.assertTrue(row.loadable)
    irw_row = next(r for r in rows if r.kind == "irw")
    tc.assertEqual(irw_row.inversion_times_text, "100, 180, 260, 1100, 2100, 3100, 4100")
    tc.assertEqual(irw_row.size_text, "1 x 7")


def check_volume_node(tc: unittest.TestCase, node: Any, n_slices: int, frame: int = 0) -> None:
    """Geometry (RAS) and voxel values of a loaded frame."""
    from slicer.util import arrayFromVolume

    tc.assertEqual(tuple(node.GetImageData().GetDimensions()), (COLS, ROWS, n_slices))
    np.testing.assert_allclose(node.GetSpacing(), SPACING_MM, atol=1e-4)
    np.testing.assert_allclose(node_ijk_to_ras(node), expected_ijk_to_ras(), atol=1e-3)
    np.testing.assert_allclose(arrayFromVolume(node), position_pattern(n_slices, frame), atol=0.5)


def check_load(tc: unittest.TestCase, logic: Any, study: SyntheticStudy) -> dict[str, Any]:
    """Load each series: a volume for LGE, sequences with the right frame count and per-frame
    times for IRW and cine. Returns the :class:`LoadedSeries` by kind."""
    from cmrlib.mrml import image_from_sequence_node

    from .study_loader import series_kind_of

    if logic.loader.scan_result is None:
        logic.scan(study.folder)
    by_kind = {s.kind: i for i, s in enumerate(logic.loader.series)}
    loaded: dict[str, Any] = {}

    lge = logic.load(by_kind["lge_psir"])
    tc.assertFalse(lge.is_sequence)
    tc.assertTrue(lge.node.IsA("vtkMRMLScalarVolumeNode"))
    tc.assertEqual(series_kind_of(lge.node), "lge_psir")
    tc.assertEqual(lge.node.GetAttribute("CMR.SeriesNumber"), "5")
    tc.assertTrue(lge.node.GetName().startswith("5: LGE PSIR"))
    check_volume_node(tc, lge.node, 3)
    loaded["lge_psir"] = lge

    for kind, key in (("irw", "InversionTime"), ("cine", "TriggerTime")):
        expected = study.series[kind]
        result = logic.load(by_kind[kind])
        tc.assertTrue(result.is_sequence, kind)
        tc.assertTrue(result.node.IsA("vtkMRMLSequenceNode"))
        tc.assertEqual(result.node.GetNumberOfDataNodes(), expected.n_frames)
        tc.assertEqual(result.n_frames, expected.n_frames)
        tc.assertEqual(series_kind_of(result.node), kind)
        tc.assertIsNotNone(result.display_node)
        check_volume_node(tc, result.node.GetNthDataNode(0), expected.n_slices, frame=0)
        image = image_from_sequence_node(result.node)
        np.testing.assert_allclose([float(v) for v in image.frame_values(key)], expected.frame_times_ms)
        loaded[kind] = result

    tc.assertEqual(len(logic.loaded_nodes(["irw", "lge_psir", "cine"])), 3)
    return loaded
