"""`cmr segment` with the bundled qcd-compact weights (phantom-trained demonstration weights):
the files and their schema, held-out phantom Dice, the flag on every image it cannot read,
bad inputs refused with nothing written, and the QCD mask reaching later `cmr run` steps."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmrlib import Image
from cmrlib.cli import main
from cmrlib.models import clear_model_cache

from conftest import tree_snapshot


pytestmark = pytest.mark.usefixtures("bundled_models_only")  # conftest: the bundled weights, nothing else


@pytest.fixture(scope="module")
def heldout():
    """Held-out phantom LGE PSIR / magnitude / VNE stacks (3 LV slices each) of two subjects."""
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    out = []
    for seed in (980_501, 980_502):
        s = sample_subject(seed, PhantomOptions(field_t=1.5, matrix=112, la=False))
        ph = Phantom(s)
        k = s.n_slices // 2
        psir, mag = ph.lge([k - 1, k, k + 1])
        out += [psir, mag, ph.vne([k - 1, k, k + 1])]
    return out


def _myo_dice(labels, truth_labels):
    from cmrlib.metrics import dice
    return dice(np.asarray(labels) == 1, np.isin(np.asarray(truth_labels), (1, 3)))


def test_segment_image_schema_and_held_out_dice(heldout):
    from cmrlib.qcd.pipeline import segment_image
    dices = []
    for ser in heldout:
        r = segment_image(ser.image)
        assert r.labels.array.shape == ser.image.array.shape
        assert set(np.unique(r.labels.array)) <= {0, 1, 2}
        d = r.to_dict()
        assert [s["index"] for s in d["slices"]] == [0, 1, 2]
        for s in d["slices"]:
            assert {"index", "predicted_dice", "qc_pass", "candidate", "candidates_predicted_dice"} <= set(s)
            assert len(s["candidates_predicted_dice"]) == 12 and 0.0 <= s["predicted_dice"] <= 1.0
        for k in range(3):
            dk = _myo_dice(r.labels.array[k], ser.labels.array[k])
            dices.append(dk)
            if r.slices[k].qc_pass:  # a passed slice is not a wrong mask
                assert dk >= 0.5, (ser.kind, k, dk, r.slices[k].predicted_dice)
    assert np.mean(dices) > 0.75, dices


def _rotated_copy(img: Image, array: np.ndarray) -> Image:
    return Image(array.astype(np.float32), img.spacing, img.origin, img.direction, False, dict(img.meta))


def test_the_flag_fires_on_images_the_model_cannot_read(heldout):
    from cmrlib.qcd.data import non_cardiac_image
    from cmrlib.qcd.pipeline import segment_image
    base = heldout[0].image
    n, rows, cols = base.array.shape
    rng = np.random.default_rng(0)
    empty = np.zeros((n, rows, cols))
    constant = np.full((n, rows, cols), 417.0)
    noise = rng.normal(0, 1, (n, rows, cols))
    noncardiac = np.stack([non_cardiac_image(np.random.default_rng(i), rows)[:, :cols] for i in range(n)])
    for name, arr in (("empty", empty), ("constant", constant), ("pure noise", noise), ("non-cardiac", noncardiac)):
        r = segment_image(_rotated_copy(base, arr))
        assert not any(s.qc_pass for s in r.slices), (name, [s.predicted_dice for s in r.slices])
        assert all(s.reason for s in r.slices)
    # a long-axis plane (its geometry says so): refused without running the networks
    la = base.direction.copy()
    la[:, [1, 2]] = la[:, [2, 1]]
    r = segment_image(Image(base.array, base.spacing, base.origin, la, False, dict(base.meta)))
    assert all("not a short-axis image" in s.reason for s in r.slices)


KNOWN_MISS = pytest.mark.xfail(strict=True, reason=(
    "known limitation, measured: at severity 1 the first ghost is a copy of the heart at 90 % intensity; on two of "
    "the three slices the overview pass sees the ghost alone, the crop centres on it and the ensemble agrees with "
    "itself (predicted Dice 0.86, true 0.11 and 0.00); where the overview sees both hearts (severity 0.6) the slice "
    "fails QC (separate blood pools), and two hearts in the crop are caught by the separate-regions rule"))


@pytest.mark.parametrize("kind,sev", [(k, s) for k in ("noise", "ghosting", "signal_void", "inversion")
                                      for s in (0.6, 1.0) if (k, s) != ("ghosting", 1.0)]
                         + [pytest.param("ghosting", 1.0, marks=KNOWN_MISS)])
def test_heavy_artefact_or_an_unseen_contrast_is_never_a_confident_wrong_mask(heldout, kind, sev):
    from cmrlib.augment import corrupt
    from cmrlib.qcd.pipeline import segment_image
    ser = heldout[0]
    rng = np.random.default_rng(1)
    arr = np.stack([corrupt(a, rng, kind, float(sev)) for a in ser.image.array])
    r = segment_image(_rotated_copy(ser.image, arr))
    for k, s in enumerate(r.slices):
        d = _myo_dice(r.labels.array[k], ser.labels.array[k])
        assert not (s.qc_pass and d < 0.5), (kind, k, d, s.predicted_dice)


def test_cmr_segment_writes_the_declared_files(heldout, tmp_path):
    from cmrlib.capabilities import capability
    from cmrlib.io import read_image, write_image
    img_path = write_image(heldout[0].image, tmp_path / "lge.nrrd")
    out = tmp_path / "out"
    assert main(["segment", str(img_path), "--out", str(out), "--quiet"]) == 0
    cap = capability("segment")
    assert {p.name for p in out.iterdir()} == {o.name for o in cap.outputs}
    doc = json.loads((out / "result.json").read_text())
    assert doc["model"]["name"] == "qcd-compact" and "phantom-trained" in doc["model"]["notice"]
    assert doc["seconds"] > 0 and len(doc["slices"]) == 3
    labels = read_image(out / "labels.nrrd")
    assert labels.array.shape == heldout[0].image.array.shape
    assert np.allclose(labels.origin, heldout[0].image.origin) and np.allclose(labels.direction, heldout[0].image.direction)
    assert labels.meta["qc_failed_slices"] == doc["failed_slices"]


def test_bad_inputs_are_refused_with_one_line_and_nothing_written(heldout, tmp_path, capsys):
    from cmrlib.io import write_image
    src = tmp_path / "in"
    src.mkdir()
    seq = Image(np.random.default_rng(0).random((4, 1, 32, 32)).astype(np.float32), (2.0, 2.0, 8.0), (0, 0, 0),
                np.eye(3), True)
    write_image(seq, src / "cine.nrrd")
    img_path = write_image(heldout[0].image, src / "lge.nrrd")
    (src / "notes.txt").write_text("x")
    before = tree_snapshot(tmp_path)
    for argv in (["segment", str(src / "cine.nrrd"), "--out", str(tmp_path / "o1")],
                 ["segment", str(img_path), "--out", str(tmp_path / "o2"), "--threshold", "1.5"],
                 ["segment", str(src / "notes.txt"), "--out", str(tmp_path / "o3")],
                 ["segment", str(src), "--out", str(src / "inside")]):
        capsys.readouterr()
        assert main(argv + ["--quiet"]) in (1, 2)
        err = capsys.readouterr().err.strip()
        assert err and len(err.splitlines()) == 1, err
    assert tree_snapshot(tmp_path) == before
    # the sequence with a frame chosen is fine
    assert main(["segment", str(src / "cine.nrrd"), "--out", str(tmp_path / "o4"), "--frame", "1", "--quiet"]) == 0


def test_huge_or_tiny_pixel_spacing_is_resampled_and_said(heldout):
    from cmrlib.qcd.pipeline import segment_image
    img = heldout[0].image
    for spacing in ((0.2, 0.2, 8.0), (9.0, 9.0, 8.0)):
        r = segment_image(Image(img.array, spacing, img.origin, img.direction, False, dict(img.meta)))
        assert any("resampled" in n for n in r.notes)
        assert r.labels.array.shape == img.array.shape
    single = Image(img.array[1:2], img.spacing, img.origin, img.direction, False, dict(img.meta))
    assert len(segment_image(single).slices) == 1  # a 2-D image where a stack is usual


def test_cmr_run_hands_the_qcd_mask_to_landmarks(tmp_path):
    from cmrlib.phantom import PhantomOptions, make_study, write_study
    study = make_study(5, PhantomOptions(matrix=64, la=False, stress=False, n_slices=6))
    root = write_study(study, tmp_path / "study")
    out = tmp_path / "run"
    main(["run", str(root), "--out", str(out), "--quiet"])
    run = json.loads((out / "run.json").read_text())
    assert run["steps"]["segment"]["status"] == "done", run["steps"]["segment"]
    seg = run["steps"]["segment"]["result"]["series"]
    assert {r["kind"] for r in seg} >= {"lge_psir", "lge_magnitude"}
    lm = run["steps"]["landmarks"]
    assert lm["status"] == "done"
    lge = [r for r in lm["result"]["series"] if r["kind"] in ("lge_psir", "lge_magnitude")]
    assert lge and all(r["mask"].startswith("QCD qcd-compact") for r in lge)
    html = (out / "report.html").read_text()
    assert "QC per slice" in html and "contours.png" in html
