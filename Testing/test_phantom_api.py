"""Phantom API: determinism, speed, options, artefact bookkeeping, labels, bundled study."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from cmrlib.errors import InputError
from cmrlib.phantom import (ARTEFACTS, Phantom, PhantomOptions, bundled_study_path, extract_bundled_study,
                            random_irw, random_lge_slice, sample_subject, subject_seeds)
from cmrlib.phantom.labels import certainty_class

ROOT = Path(__file__).resolve().parents[1]


def test_same_seed_same_data_and_different_seeds_differ():
    a = random_irw(5)
    b = random_irw(5)
    c = random_irw(6)
    assert np.array_equal(a.image.array, b.image.array)
    assert a.truth["frames"] == b.truth["frames"]
    assert not np.array_equal(a.image.array, c.image.array)
    seeds = subject_seeds(1, 5)
    assert len(set(seeds)) == 5 and seeds == subject_seeds(1, 5)


def test_single_series_are_fast():
    """Training loops draw thousands: one IRW set and one LGE slice well under a second."""
    random_irw(0), random_lge_slice(0)  # warm-up (imports, caches)
    for field in (1.5, 3.0):  # the IRW simulation's reading curves are cached per tissue T2 (i.e. per field)
        random_irw(0, options=PhantomOptions(matrix=128, la=False, field_t=field))
    t0 = time.perf_counter()
    for seed in range(5):
        random_irw(seed)
    t_irw = (time.perf_counter() - t0) / 5
    t0 = time.perf_counter()
    for seed in range(5):
        random_lge_slice(seed)
    t_lge = (time.perf_counter() - t0) / 5
    assert t_irw < 0.5 and t_lge < 0.5, (t_irw, t_lge)


def test_invalid_options_raise_input_error():
    for bad in (dict(field_t=2.0), dict(scar="big"), dict(artefacts={"ghosting": 2.0}), dict(artefacts={"bogus": 0.1}),
                dict(matrix=8), dict(snr=-1.0), dict(scheme="MOLLI 9"), dict(motion=1.5)):
        with pytest.raises(InputError):
            sample_subject(1, PhantomOptions(**bad))
    ph = Phantom(sample_subject(1, PhantomOptions(matrix=64, la=False)))
    with pytest.raises(InputError):
        ph.irw("middle")
    with pytest.raises(InputError):
        ph.irw("mid", "exercise")


def test_options_are_honoured():
    opt = PhantomOptions(field_t=3.0, scar="nonischemic", phenotype="hcm", n_phases=24, n_slices=10,
                         scheme="MOLLI 3(3)3(3)5", matrix=64, artefacts={"ghosting": 0.7}, la=False)
    s = sample_subject(9, opt)
    assert (s.field_t, s.scar.kind, s.phenotype, s.n_phases, s.n_slices, s.scheme) == \
        (3.0, "nonischemic", "hcm", 24, 10, "MOLLI 3(3)3(3)5")
    assert s.artefacts["ghosting"] == 0.7
    clean = sample_subject(9, PhantomOptions(clean=True))
    assert all(v == 0 for v in clean.artefacts.values()) and all(np.isinf(v) for v in clean.snr.values())
    assert set(ARTEFACTS) <= set(s.artefacts)


def test_motion_fields_and_their_inverse():
    opt = PhantomOptions(matrix=96, la=False, motion=0.8, snr=float("inf"))
    irw = random_irw(4, position="mid", options=opt)
    d, v = irw.displacement, irw.inverse_displacement
    assert d.shape == (irw.image.n_frames, 2, 96, 96)
    assert irw.truth["artefacts"]["motion"] == pytest.approx(0.8)
    assert irw.truth["motion"]["max_displacement_mm"] > 2.0
    rr, cc = np.mgrid[0:96, 0:96].astype(np.float32)
    for f in range(d.shape[0]):  # v(x) + d(x + v(x)) = 0: the inverse undoes the motion
        dv = np.stack([ndimage.map_coordinates(d[f, c], [rr + v[f, 0], cc + v[f, 1]], order=1, mode="nearest")
                       for c in range(2)])
        assert np.abs(v[f] + dv)[:, 8:-8, 8:-8].max() < 0.05
    still = random_irw(4, position="mid", options=PhantomOptions(matrix=96, la=False, motion=0.0))
    assert not np.any(still.displacement)


def test_misregistration_moves_the_anatomy():
    opt = PhantomOptions(matrix=96, la=False, stress=True, snr=float("inf"), artefacts={"misregistration": 1.0})
    ph = Phantom(sample_subject(8, opt))
    rest, stress = ph.irw("mid", "native"), ph.irw("mid", "stress")
    m = stress.truth["misregistration"]
    assert m is not None and any(abs(v) > 0.1 for v in m.values())
    c_rest = np.array(rest.truth["slice"]["lv_centre"]["pixel_col_row"])
    c_stress = np.array(stress.truth["slice"]["lv_centre"]["pixel_col_row"])
    # the landmark follows the moved heart: blood-pool centroids move the same way
    def centroid(series):
        cy, cx = ndimage.center_of_mass(series.labels.array[0] == 2)
        return np.array([cx, cy])
    assert np.allclose(c_stress - c_rest, centroid(stress) - centroid(rest), atol=1.0)


def test_lge_likelihood_proportion_and_direction():
    """About a quarter of LV LGE slices are equivocal (26-74) over random subjects."""
    scores, scar = [], []
    for seed in range(40):
        ph = Phantom(sample_subject(seed, PhantomOptions(matrix=80, la=False)))
        psir, _ = ph.lge()
        for sl in psir.truth["slices"]:
            if sl["class"] == "LV":
                scores.append(sl["lge_likelihood"])
                scar.append(sl["scar_present"])
                assert sl["certainty"] == certainty_class(sl["lge_likelihood"])
    scores, scar = np.array(scores), np.array(scar)
    equivocal = np.mean((scores > 25) & (scores < 75))
    assert 0.15 <= equivocal <= 0.35, equivocal
    assert np.median(scores[scar]) > 60 and np.median(scores[~scar]) < 25
    # a clean scar slice scores high; the same slice with severe poor nulling less certain
    base = dict(matrix=96, la=False, scar="ischemic", snr=float("inf"))
    clean = Phantom(sample_subject(3, PhantomOptions(clean=True, **{k: v for k, v in base.items() if k != "snr"})))
    bad = Phantom(sample_subject(3, PhantomOptions(artefacts={"nulling": 1.0, "ghosting": 1.0}, **base)))
    lc = {s["index"]: s for s in clean.lge()[0].truth["slices"]}
    lb = {s["index"]: s for s in bad.lge()[0].truth["slices"]}
    k = max((i for i in lc if lc[i]["scar_present"] and lc[i]["class"] == "LV"), key=lambda i: lc[i]["scar_area_mm2"])
    assert lc[k]["lge_likelihood"] > 75 and lb[k]["uncertainty"] > lc[k]["uncertainty"]
    assert abs(lb[k]["lge_likelihood"] - 50) < abs(lc[k]["lge_likelihood"] - 50)


def test_la_quality_attributes_follow_severity():
    good = Phantom(sample_subject(2, PhantomOptions(clean=True, af=True))).la_lge(matrix=96, n_slices=36)
    blurred = Phantom(sample_subject(2, PhantomOptions(artefacts={"blur": 1.0, "nulling": 1.0}, snr=20.0, af=True)))
    bad = blurred.la_lge(matrix=96, n_slices=36)
    qg, qb = good.truth["quality"], bad.truth["quality"]
    assert qg["myocardial_nulling"] >= 4 and qg["sharpness"] >= 4
    assert qb["sharpness"] <= 2 and qb["myocardial_nulling"] < qg["myocardial_nulling"]
    assert qb["overall_quality"] < qg["overall_quality"]
    assert good.truth["la_blood_volume_ml_voxels"] > 60 and good.truth["af"] is True
    assert 5.0 < good.truth["la_fibrosis_percent_of_wall"] < 50.0
    assert np.any(good.labels.array == 8) and np.any(good.labels.array == 6)


def test_bundled_study_and_sample_data_record(tmp_path):
    record = json.loads((ROOT / "cmrlib" / "resources" / "sampledata" / "sampledata.json").read_text())
    zip_path = bundled_study_path()
    assert zip_path == ROOT / "cmrlib" / "resources" / "sampledata" / record["file"]
    assert hashlib.sha256(zip_path.read_bytes()).hexdigest() == record["sha256"]
    assert zip_path.stat().st_size < 8e6
    dicom = extract_bundled_study(tmp_path / "demo")
    from cmrlib.io import scan_folder
    kinds = {s.kind for s in scan_folder(dicom).series}
    assert {"cine", "irw", "t1map", "lge_psir", "lge_magnitude"} <= kinds
    assert (tmp_path / "demo" / "truth.json").is_file()
    with pytest.raises(InputError):  # refuses a non-empty destination
        extract_bundled_study(tmp_path / "demo")


def test_sampledata_module_registers_without_importing_slicer_at_module_level(monkeypatch):
    path = ROOT / "CMRQuality" / "CMRQualityLib" / "sampledata.py"
    spec = importlib.util.spec_from_file_location("cmr_sampledata_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # no Slicer here: the module must import anyway
    calls = []

    class FakeLogic:
        @staticmethod
        def registerCustomSampleDataSource(**kwargs):
            calls.append(kwargs)

    monkeypatch.setitem(sys.modules, "SampleData", types.SimpleNamespace(SampleDataLogic=FakeLogic))
    mod.register_sample_data()
    assert len(calls) == 1
    kw = calls[0]
    record = json.loads((ROOT / "cmrlib" / "resources" / "sampledata" / "sampledata.json").read_text())
    assert kw["category"] == "Cardiac MRI" and kw["checksums"] == f"SHA256:{record['sha256']}"
    assert kw["uris"].startswith("file://") and kw["uris"].endswith(record["file"])
    assert kw["fileNames"] == record["file"] and callable(kw["customDownloader"])


def test_stress_cohort_spreads_like_the_dt1_papers_and_changes_nothing_else():
    """The global stress response (its own random stream) spreads the cohort's dT1 like the
    paper's cohort (3.6 ± 3.3 %); every other parameter of a subject is what it was without it."""
    from cmrlib.phantom import params
    means = []
    for seed in range(300, 420):
        s = sample_subject(seed, PhantomOptions(matrix=96))
        means.append(100 * np.mean(list(s.stress_reactivity.values())))
    means = np.array(means)
    assert 2.8 < means.mean() < 4.6 and 2.4 < means.std() < 4.2
    assert (means < 0).any() and (means > 8).any()  # inadequate stress and strong responders
    assert params.stress_response(7) == params.stress_response(7)
    s = sample_subject(5, PhantomOptions(matrix=96))
    orig = params.stress_response
    try:
        params.stress_response = lambda seed: 1.0
        plain = sample_subject(5, PhantomOptions(matrix=96))
    finally:
        params.stress_response = orig
    assert {k: v for k, v in s.to_dict().items() if k != "stress_reactivity"} == \
        {k: v for k, v in plain.to_dict().items() if k != "stress_reactivity"}
    f = orig(5)
    assert all(s.stress_reactivity[k] == pytest.approx(plain.stress_reactivity[k] * f) for k in range(1, 18))
