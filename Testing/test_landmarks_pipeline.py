"""Landmarks wiring: `cmr landmarks` files and schema, the no-landmark reasons, AHA segments and
T1 per segment with a mask, reader → adapter, `--data` folders, `cmr train landmarks`.

The networks here are tiny and untrained (a models folder the test writes): these tests check
what the code does with any prediction; the bundled weights' accuracy is in
test_landmarks_model.py and benchmarks/bench_landmarks.py.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmrlib import Image
from cmrlib.cli import main
from cmrlib.errors import InputError


@pytest.fixture
def tiny_models(tmp_path, monkeypatch):
    """A models folder with an untrained 'landmarks-compact' (CMR_MODELS_DIR points at it)."""
    import torch
    from cmrlib.landmarks.resnetv2 import LandmarkNetConfig, TwoStageLandmarkNet
    from cmrlib.landmarks.train import model_entry
    from cmrlib.models import clear_model_cache, save_model
    torch.manual_seed(0)
    cfg = LandmarkNetConfig(widths=(2, 2, 2, 2), blocks=(1, 1, 1, 1), stem=4, dense=8, stage1_size=32,
                            stage1_pixel_mm=8.0, stage2_size=24, stage2_pixel_mm=4.0)
    model = TwoStageLandmarkNet(cfg).eval()
    folder = tmp_path / "models"
    save_model(model, model_entry(model, cfg, "landmarks-compact", [], "test", 0.0, "nothing (untrained test net)"),
               folder)
    save_open_presence_gate(folder, cfg)
    monkeypatch.setenv("CMR_MODELS_DIR", str(folder))
    clear_model_cache()
    yield folder
    clear_model_cache()


def save_open_presence_gate(folder, cfg) -> None:
    """An untrained LV-presence gate whose threshold 0 lets every slice through (it shadows the
    bundled gate, so these tests see only what the landmark network is made to predict)."""
    from dataclasses import replace

    from cmrlib.landmarks.resnetv2 import LandmarkNet
    from cmrlib.models import ModelEntry, save_model
    gate = LandmarkNet(replace(cfg, outputs=1)).eval()
    entry = ModelEntry(name="landmarks-presence-compact", task="landmarks-presence", architecture="landmark-resnetv2",
                       file="landmarks-presence-compact.safetensors", sha256="", version="0", arch_args=gate.arch_args(),
                       input={}, label_table={}, trained_on="nothing (untrained test gate)", phantom_trained=True,
                       train_command="test", metrics={}, card="")
    entry.calibration = {"presence_threshold": 0.0}
    save_model(gate, entry, folder)


def _stack(tmp_path):
    """A 3-slice phantom LGE stack with its truth labels, as NRRD files."""
    from cmrlib.io import write_image
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    s = sample_subject(11, PhantomOptions(matrix=64, la=False))
    k = s.n_slices // 2
    psir, _ = Phantom(s).lge([k - 2, k, k + 2])
    img_path = write_image(psir.image, tmp_path / "lge.nrrd")
    lab_path = write_image(psir.labels, tmp_path / "labels.nrrd")
    return psir, img_path, lab_path


def test_cmr_landmarks_writes_the_schema_and_segments(tiny_models, tmp_path, monkeypatch):
    import cmrlib.landmarks.pipeline as pipeline
    from cmrlib.capabilities import capability
    from cmrlib.contract import resolve
    psir, img_path, lab_path = _stack(tmp_path)
    # the untrained net's points are not the point here: take the phantom's truth as its prediction
    truth = [(np.array(t["rv_insertion_anterior"]["pixel_col_row"]), np.array(t["lv_centre"]["pixel_col_row"]))
             for t in psir.truth["slices"]]
    from cmrlib.landmarks import infer

    def fake_predict(model, images, spacing, mirrored=False, **kw):
        k = fake_predict.calls
        fake_predict.calls += 1
        rv, lv = truth[k]
        return [infer.Prediction(rv, lv, rv, lv, 0.5, float(np.exp(-0.5 / infer.CONFIDENCE_SCALE_MM)))]
    fake_predict.calls = 0
    monkeypatch.setattr(infer, "predict", fake_predict)
    out = tmp_path / "out"
    level = psir.truth["slices"][1]["aha_level"]
    assert main(["landmarks", str(img_path), "--out", str(out), "--mask", str(lab_path), "--level", level,
                 "--quiet"]) == 0
    cap = capability("landmarks")
    files = {p.name for p in out.iterdir()}
    assert {o.name for o in cap.outputs if not o.optional} <= files <= {o.name for o in cap.outputs}
    assert {"aha_segments.nrrd", "segments.csv"} <= files
    doc = json.loads((out / "landmarks.json").read_text())
    assert [s["index"] for s in doc["slices"]] == [0, 1, 2]
    for s in doc["slices"]:
        assert s["reason"] is None and 0 < s["confidence"] <= 1
        for px, lps in (("lv_centre_px", "lv_centre_lps"), ("rv_insertion_px", "rv_insertion_lps")):
            expect = psir.image.index_to_lps([*s[px], s["index"]])
            np.testing.assert_allclose(s[lps], expect, atol=1e-2)
        # with a mask the LV centre is the myocardium centroid: the true centre within half a pixel
        np.testing.assert_allclose(s["lv_centre_px"], truth[s["index"]][1], atol=0.5)
    summary = json.loads((out / "result.json").read_text())
    assert summary["model"]["name"] == "landmarks-compact" and summary["seconds"] >= 0
    # the segments follow the AHA model: the phantom's own AHA map agrees on most of the middle slice
    outputs = resolve(cap.reader)(out)
    seg = outputs["segments"].array
    myo = seg[1] > 0
    assert myo.sum() > 30 and np.mean(seg[1][myo] == psir.aha.array[1][myo]) > 0.8
    assert {r["segment"] for r in outputs["segment_stats"]} == set(np.unique(seg[seg > 0]).tolist())
    section = resolve(cap.report)({"series": [dict(summary, out="x")]}, tmp_path)
    assert section.findings and "3 / 3" in section.findings[0].text()
    assert any("phantom-trained" in n for n in section.notes)


def test_no_landmarks_with_a_reason(tiny_models, tmp_path):
    from cmrlib.landmarks.pipeline import detect
    rng = np.random.default_rng(0)
    arr = np.zeros((3, 40, 40), np.float32)
    arr[1] = rng.normal(100, 10, (40, 40))
    arr[2] = rng.normal(100, 10, (40, 40))
    labels = np.zeros(arr.shape, np.uint8)
    labels[2, 10:20, 10:20] = 1
    res = detect(Image(arr, (2.0, 2.0, 8.0)), labels=labels)
    assert res.slices[0].reason.startswith("the slice is empty")
    assert "no myocardium in this slice" in res.slices[1].reason
    # a plane that holds the long axis: refused from the geometry, not guessed
    la = np.array([[1.0, -1.0, -1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]).T
    la[:, 0] /= np.linalg.norm(la[:, 0])
    la[:, 1] /= np.linalg.norm(la[:, 1])
    la[:, 2] = np.cross(la[:, 0], la[:, 1])
    res = detect(Image(arr[1:2], (2.0, 2.0, 8.0), direction=la))
    assert res.slices[0].lv_centre_px is None and "not a short-axis image" in res.slices[0].reason
    for s in res.slices:
        d = s.to_dict()
        assert d["lv_centre_px"] is None and d["reason"]


def test_missing_weights_and_bad_input_say_so(tmp_path, monkeypatch):
    from cmrlib.errors import NotAvailableError
    from cmrlib.landmarks.pipeline import detect
    from cmrlib.models import clear_model_cache
    with pytest.raises(NotAvailableError, match="cmr train landmarks"):
        detect(Image(np.ones((1, 8, 8), np.float32)), model_name="no-such-landmarks")
    clear_model_cache()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.txt").write_text("x")
    assert main(["landmarks", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    assert not (tmp_path / "out").exists()


def _user_folder(tmp_path):
    """Two annotated NRRD images: one with a Slicer markups file (RAS), one through landmarks.csv."""
    from cmrlib.io import write_image
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    folder = tmp_path / "mine"
    folder.mkdir()
    truths = []
    for j, seed in enumerate((21, 22)):
        s = sample_subject(seed, PhantomOptions(matrix=64, la=False))
        ser = Phantom(s).vne([s.n_slices // 2])
        write_image(ser.image, folder / f"img{j}.nrrd")
        t = ser.truth["slices"][0]
        truths.append((np.array(t["rv_insertion_anterior"]["pixel_col_row"]), np.array(t["lv_centre"]["pixel_col_row"])))
        if j == 0:
            ras = lambda p: (np.array(p) * [-1, -1, 1]).tolist()  # noqa: E731
            doc = {"markups": [{"type": "Fiducial", "coordinateSystem": "RAS", "controlPoints": [
                {"label": "LV centre", "position": ras(t["lv_centre"]["lps_mm"])},
                {"label": "RV insertion", "position": ras(t["rv_insertion_anterior"]["lps_mm"])}]}]}
            (folder / "img0.mrk.json").write_text(json.dumps(doc))
        else:
            (rv, lv) = truths[-1]
            (folder / "landmarks.csv").write_text("image,slice,lv_col,lv_row,rv_col,rv_row\n"
                                                  f"img1.nrrd,0,{lv[0]},{lv[1]},{rv[0]},{rv[1]}\n")
    return folder, truths


def test_user_data_folder_markups_and_csv(tmp_path):
    from cmrlib.landmarks.data import user_sources
    folder, truths = _user_folder(tmp_path)
    sources = sorted(user_sources(folder), key=lambda s: s.meta["image"])
    assert [s.meta["image"] for s in sources] == ["img0.nrrd", "img1.nrrd"]
    for src, (rv, lv) in zip(sources, truths):
        np.testing.assert_allclose(src.rv_px, rv, atol=1e-3)
        np.testing.assert_allclose(src.lv_px, lv, atol=1e-3)
    (folder / "landmarks.csv").write_text("image,slice,lv_col\nimg1.nrrd,0,3\n")
    with pytest.raises(InputError, match="needs the columns"):
        user_sources(folder)


def test_cmr_train_landmarks_on_a_user_folder_exports_weights_and_manifest(tmp_path, monkeypatch):
    import cmrlib.landmarks.resnetv2 as nets
    from cmrlib.models import read_manifest
    folder, _ = _user_folder(tmp_path)
    tiny = nets.LandmarkNetConfig(widths=(2, 2, 2, 2), blocks=(1, 1, 1, 1), stem=4, dense=8, stage1_size=32,
                                  stage1_pixel_mm=8.0, stage2_size=24, stage2_pixel_mm=4.0)
    monkeypatch.setattr(nets.LandmarkNetConfig, "preset", classmethod(lambda cls, name: tiny))
    out = tmp_path / "models"
    assert main(["train", "landmarks", "--data", str(folder), "--epochs", "2", "--batch", "2", "--out", str(out),
                 "--cache", str(tmp_path / "cache"), "--quiet"]) == 0
    entry = next(e for e in read_manifest(out) if e.name == "landmarks-compact")
    assert entry.sha256 and entry.path.is_file() and entry.metrics["epochs"] == 2
    assert "--data" in entry.train_command and not entry.phantom_trained
    assert entry.metrics["validation"]["median_error_mm"] > 0
    assert main(["train", "landmarks", "--data", str(folder), "--contrast", "lge_psir", "--out", str(out),
                 "--quiet"]) == 1
