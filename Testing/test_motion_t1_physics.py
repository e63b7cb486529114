"""`cmr motion` and issue #11: heart rate in each result, ShMOLLI conditional reconstruction with its
reasons, the median difference to the scanner's own T1 map (resampled when on another grid), the
R-R warning, vendor MOCO series, and the bad inputs (no heart-rate tags, mixed heart rates)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmrlib import Image
from cmrlib.cli import main
from cmrlib.io import StudyInfo, write_dicom_series
from cmrlib.phantom import Phantom, PhantomOptions, sample_subject


@pytest.fixture(scope="module")
def shmolli():
    """A noise-free phantom ShMOLLI set (64x64), the phantom's scanner map of it, and its truth."""
    ph = Phantom(sample_subject(3, PhantomOptions(matrix=64, la=False, clean=True, scheme="ShMOLLI")))
    irw = ph.irw("mid", "native", "ShMOLLI", motion_severity=0.0)
    return irw, ph.t1map(irw)


def _study(tmp_path, irw, t1map=None, *, irw_extra=None, irw_desc=None, irw_type=None, map_image=None):
    study = StudyInfo.new("t1-physics")
    root = tmp_path / "study"
    extra = {"MagneticFieldStrength": 1.5, **(irw_extra if irw_extra is not None else
                                              {"NominalInterval": irw.dicom["NominalInterval"]})}
    write_dicom_series(irw.image, root / "irw", description=irw_desc or irw.description, study=study,
                       series_number=3, extra=extra, **({"image_type": irw_type} if irw_type else {}))
    if t1map is not None:
        write_dicom_series(map_image or t1map.image, root / "map", description="ShMOLLI_192i_T1MAP", study=study,
                           series_number=4, image_type=("ORIGINAL", "PRIMARY", "P", "NONE"),
                           extra={"MagneticFieldStrength": 1.5})
    return root


def _result(out):
    return json.loads((out / "result.json").read_text())


def test_heart_rate_conditional_reasons_and_scanner_map(shmolli, tmp_path, capsys):
    irw, t1map = shmolli
    root = _study(tmp_path, irw, t1map)
    out = tmp_path / "out"
    assert main(["motion", str(root), "--out", str(out), "--method", "none"]) == 0
    r = _result(out)
    assert r["scheme"] == "ShMOLLI" and r["rr_source"] == "NominalInterval"
    assert r["heart_rate_bpm"] == pytest.approx(irw.truth["heart_rate_bpm"], abs=0.5)
    used = r["conditional_reconstruction"]["pixels_by_samples"]
    assert sum(used.values()) == r["valid_pixels"] and used["5"] > 0 and used["6"] + used["7"] > 0
    assert "conditional reconstruction" in r["fit"]
    (scanner,) = r["scanner_t1_maps"]
    assert scanner["series"] == "ShMOLLI_192i_T1MAP" and not scanner["resampled"]
    assert abs(scanner["median_difference_percent"]) < 1.0  # the phantom's scanner map is conditional too
    printed = capsys.readouterr().out
    assert "bpm" in printed and "median difference" in printed
    # forcing all samples: long T1 reads low against the scanner's map
    assert main(["motion", str(root), "--out", str(tmp_path / "all"), "--method", "none", "--all-samples"]) == 0
    r_all = _result(tmp_path / "all")
    assert r_all["conditional_reconstruction"]["forced_all_samples"]
    assert r_all["scanner_t1_maps"][0]["median_difference_ms"] < scanner["median_difference_ms"] - 20


def test_scanner_map_on_another_grid_is_resampled_and_said(shmolli, tmp_path):
    irw, t1map = shmolli
    src = t1map.image
    fine = np.kron(np.asarray(src.array, np.float32), np.ones((1, 2, 2), np.float32))  # interpolated x2 by the scanner
    half = (src.spacing[0] / 2, src.spacing[1] / 2, src.spacing[2])
    origin = src.index_to_lps([-0.25, -0.25, 0.0])  # pixel centres of the finer grid
    finer = Image(fine, half, tuple(origin), src.direction, False, dict(src.meta), [])
    root = _study(tmp_path, irw, t1map, map_image=finer)
    out = tmp_path / "out"
    assert main(["motion", str(root), "--out", str(out), "--method", "none", "--quiet"]) == 0
    (scanner,) = _result(out)["scanner_t1_maps"]
    assert scanner["resampled"] and any("different grid" in n for n in scanner["notes"])
    assert any("resampled" in n for n in _result(out)["notes"])
    assert abs(scanner["median_difference_percent"]) < 3.0


def test_no_heart_rate_tags_and_irregular_spacing_say_which_rr(shmolli, tmp_path):
    irw, _ = shmolli
    tis = irw.image.frame_values("InversionTime")
    meta = [dict(m) for m in irw.image.frame_meta]
    meta[5]["InversionTime"] = tis[5] + 300.0  # irregular first-inversion spacing
    img = irw.image.with_array(irw.image.array, frame_meta=meta)
    series = type("S", (), {"image": img, "description": irw.description, "dicom": irw.dicom})()
    root = _study(tmp_path, series, irw_extra={})
    out = tmp_path / "out"
    assert main(["motion", str(root), "--out", str(out), "--method", "none", "--quiet"]) == 0
    r = _result(out)
    assert "inferred from the first inversion's TI spacing" in r["rr_source"] and "median was assumed" in r["rr_source"]
    assert any("no heart-rate tags" in n for n in r["notes"])
    assert r["heart_rate_bpm"] is not None


def test_rr_warning_and_vendor_moco(tmp_path, capsys):
    ph = Phantom(sample_subject(4, PhantomOptions(matrix=48, la=False, clean=True, scheme="MOLLI 5(3)3")))
    irw = ph.irw("mid", "native", "MOLLI 5(3)3", motion_severity=0.0)
    root = _study(tmp_path, irw, irw_extra={"NominalInterval": 500.0}, irw_desc="MOLLI 5(3)3 SAX MOCO",
                  irw_type=("DERIVED", "PRIMARY", "M", "MOCO"))
    out = tmp_path / "out"
    assert main(["motion", str(root), "--out", str(out), "--method", "classical", "--quiet"]) == 0
    r = _result(out)
    assert r["heart_rate_bpm"] == pytest.approx(120.0)
    assert any("too short" in w for w in r["warnings"])
    assert any("MOCO" in w and "--method none" in w for w in r["warnings"])
    assert r["conditional_reconstruction"] is None and "all frames" in r["fit"]


def test_irw_mixing_heart_rates_refused_nothing_written(shmolli, tmp_path):
    irw, _ = shmolli
    study = StudyInfo.new("mixed")
    uid = "1.2.826.0.1.3680043.8.498.99"
    img = irw.image
    first = Image(img.array[:4], img.spacing, img.origin, img.direction, True, dict(img.meta), img.frame_meta[:4])
    rest = Image(img.array[4:], img.spacing, img.origin, img.direction, True, dict(img.meta),
                 [dict(m, InstanceNumber=10 + k) for k, m in enumerate(img.frame_meta[4:])])
    write_dicom_series(first, tmp_path / "study" / "a", description="ShMOLLI", study=study, series_uid=uid,
                       extra={"NominalInterval": 1000.0})
    write_dicom_series(rest, tmp_path / "study" / "b", description="ShMOLLI", study=study, series_uid=uid,
                       extra={"NominalInterval": 600.0})
    out = tmp_path / "out"
    assert main(["motion", str(tmp_path / "study"), "--out", str(out), "--method", "none", "--quiet"]) != 0
    assert not out.exists()
