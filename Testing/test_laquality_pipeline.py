"""`cmr quality la` / `cmr la-quality` with the bundled phantom-trained weights: the verdict, the LA
mask against the phantom's truth, the files and the report, the refusals and the "no LA" path."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmrlib.cli import main
from cmrlib.image import Image
from cmrlib.io import read_image, write_image
from cmrlib.laquality.networks import LABELS
from cmrlib.laquality.outputs import read_result, report_section
from cmrlib.laquality.pipeline import assess_volume
from cmrlib.models.zoo import model_installed

pytestmark = pytest.mark.skipif(not (model_installed("la-detector-compact") and model_installed("la-quality-compact")),
                                reason="bundled LA weights not installed")


@pytest.fixture(scope="module")
def phantom_la():
    from cmrlib.laquality.data import phantom_options
    from cmrlib.phantom import Phantom, sample_subject
    return Phantom(sample_subject(62_001, phantom_options(62_001))).la_lge(matrix=144, n_slices=36)


@pytest.fixture(scope="module")
def assessed(phantom_la):
    return assess_volume(phantom_la.image, series="LA 3D LGE")


def test_detector_finds_the_atrium(assessed, phantom_la):
    truth = phantom_la.labels.array == 6
    mask = assessed.la_mask
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.6
    has = truth.reshape(len(truth), -1).any(1)
    used = np.zeros(len(truth), bool)
    used[assessed.slices_used] = True
    assert (used & has).sum() / has.sum() > 0.8  # sensitivity of slice selection
    assert (~used & ~has).sum() / max((~has).sum(), 1) > 0.6


def test_result_has_every_attribute_and_a_mode_verdict(assessed):
    d = assessed.to_dict()
    assert set(d["attributes"]) == set(LABELS[:3]) and d["overall_quality"] is not None
    for a in [*d["attributes"].values(), d["overall_quality"]]:
        assert 0.0 <= a["probability"] <= 1.0 and 0 <= a["votes"] <= len(d["slices_used"])
        # the verdict is the mode of the slice decisions (a tie goes to the mean probability)
        if a["votes"] * 2 != len(d["slices_used"]):
            assert a["diagnostic"] == (a["votes"] * 2 > len(d["slices_used"]))
    # the votes are the used slices at or above each label's threshold (from the model's manifest)
    used = [s for s in d["slices"] if s["used"]]
    for k in LABELS:
        a = d["overall_quality"] if k == "overall_quality" else d["attributes"][k]
        assert a["votes"] == sum(s["probabilities"][k] >= a["threshold"] for s in used)
    assert d["diagnostic"] == d["overall_quality"]["diagnostic"]
    assert d["variant"] in ("baseline", "multitask", "contrastive")
    assert assessed.saliency.max() > 0 and assessed.saliency_slice in d["slices_used"]
    assert all(m["notice"] for m in d["models"])


def test_cli_writes_the_declared_files(tmp_path, phantom_la):
    src = tmp_path / "la.nrrd"
    write_image(phantom_la.image, src)
    out = tmp_path / "out"
    assert main(["quality", "la", str(src), "--out", str(out), "--quiet", "--saliency-slice", "18"]) == 0
    r = read_result(out)
    assert r["summary"]["saliency_slice"] == 17
    mask = read_image(r["la_mask"])
    assert mask.array.shape == phantom_la.image.array.shape and np.allclose(mask.origin, phantom_la.image.origin)
    assert read_image(r["saliency"]).array.max() <= 1.0
    with (out / "slices.csv").open() as fh:
        assert len(fh.readlines()) == 1 + 36
    # `cmr la-quality` is the same command
    out2 = tmp_path / "out2"
    assert main(["la-quality", str(src), "--out", str(out2), "--quiet"]) == 0
    assert json.loads((out2 / "result.json").read_text())["diagnostic"] == r["summary"]["diagnostic"]
    section = report_section({"series": [{**r["summary"], "out": "la-quality", "figures": ["saliency.png"]}]}, tmp_path)
    assert section.tables[0].rows[-1][0] == "overall quality" and section.figures


def test_other_spacings_are_resampled_and_said(phantom_la):
    from scipy import ndimage
    img = phantom_la.image
    coarse = Image(ndimage.zoom(img.array, (2.5 / 2.0, 1.25 / 1.8, 1.25 / 1.8), order=1), (1.8, 1.8, 2.0),
                   img.origin, img.direction)
    r = assess_volume(coarse, with_saliency=False)
    assert any("resampled from 1.80 × 1.80 × 2.00 mm" in n for n in r.notes)
    assert r.grid.spacing == (1.25, 1.25, 2.5) and r.slices_used


def test_no_atrium_gives_no_score(tmp_path):
    rng = np.random.default_rng(0)
    blank = Image(rng.normal(10, 1, (30, 128, 128)).astype(np.float32), (1.25, 1.25, 2.5),
                  direction=np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]]).T)
    r = assess_volume(blank)
    assert r.diagnostic is None and r.slices_used == [] and "no left atrium found" in r.sentence
    src, out = tmp_path / "blank.nrrd", tmp_path / "out"
    write_image(blank, src)
    assert main(["quality", "la", str(src), "--out", str(out), "--quiet"]) == 0
    d = json.loads((out / "result.json").read_text())
    assert d["diagnostic"] is None and d["overall_quality"] is None


@pytest.mark.parametrize("case,message", [("2d", "2-D image"), ("sax", "short-axis")])
def test_wrong_inputs_are_refused_and_nothing_is_written(tmp_path, capsys, case, message):
    if case == "2d":
        img = Image(np.zeros((1, 128, 128), np.float32), (1.25, 1.25, 2.5))
    else:
        from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
        img, _ = Phantom(sample_subject(3, PhantomOptions(matrix=96, la=False))).lge()
        img = img.image
    src, out = tmp_path / "in.nrrd", tmp_path / "out"
    write_image(img, src)
    rc = main(["quality", "la", str(src), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cmr_run_assesses_every_la_series_with_a_report_section(tmp_path, phantom_la):
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    from cmrlib.phantom.generate import Study
    from cmrlib.phantom.writer import write_study
    ph = Phantom(sample_subject(62_001, PhantomOptions(matrix=96)))
    study = write_study(Study(ph.s, {"la_lge": phantom_la}, ph.study_truth({"la_lge": phantom_la})), tmp_path / "s",
                        sheets=False)
    out = tmp_path / "run"
    assert main(["run", str(study / "dicom"), "--out", str(out), "--quiet"]) == 0
    run = json.loads((out / "run.json").read_text())
    step = run["steps"]["la-quality"]
    assert step["status"] == "done", step
    assert step["lines"][0].startswith("LA 3D LGE: ")
    r = read_result(out / "la-quality")
    assert r["summary"]["diagnostic"] in (True, False) and r["summary"]["slices_used"]
    html = (out / "report.html").read_text()
    assert "Left-atrial 3D LGE quality (CMRQuality)" in html and "la-quality/saliency.png" in html
