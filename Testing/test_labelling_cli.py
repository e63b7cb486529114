"""`cmr label` end to end: create, raters, next / answer, status, cut, export — and the export read
by `cmr train`'s own reader (cmrlib.quality.data.user_slices), closing the loop. Bad input is one
line on stderr with nothing written."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cmrlib.cli import main
from cmrlib.io import write_image
from conftest import tree_snapshot
from test_labelling_pool import make_stacks


def stack_files(folder: Path, n_stacks: int = 3, n_slices: int = 4) -> list[Path]:
    from cmrlib import Image
    folder.mkdir(parents=True)
    return [write_image(Image(s.array, s.spacing, s.origin, s.direction, False, {"kind": "lge_psir",
                                                                                  "PatientID": f"P{i}"}),
                        folder / f"case{i}.nrrd") for i, s in enumerate(make_stacks(n_stacks, n_slices))]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def cmr(capsys, *argv) -> tuple[int, str, str]:
    code = main([*map(str, argv), "--quiet"])
    out = capsys.readouterr()
    return code, out.out, out.err


def next_json(capsys, pool: Path, rater: str) -> dict:
    code, out, err = cmr(capsys, "label", "next", pool, "--rater", rater, "--json")
    assert code == 0, err
    return json.loads(out)


def test_scoring_from_create_to_a_folder_cmr_train_reads(tmp_path, capsys):
    from cmrlib.quality.data import user_slices
    files = stack_files(tmp_path / "in")
    pool, keys = tmp_path / "lge.sqlite", tmp_path / "private" / "keys.csv"
    keys.parent.mkdir()
    code, out, err = cmr(capsys, "label", "create", pool, *files, "--mode", "vas", "--raters", "alice,bob", "--seed",
                         "3", "--key-file", keys)
    assert code == 0, err
    assert out.startswith(f"{pool}: 12 images from 3 stack(s) (3 subject(s)), visual-analogue LGE-likelihood scoring")
    link = read_csv(keys)
    assert [r["source"] for r in link] == [str(f) for f in files] and all(r["subject"] and r["stack"] for r in link)
    code, out, _ = cmr(capsys, "label", "raters", pool, "--add", "carol", "--tokens")
    assert code == 0 and "carol  token " in out and "(new)" in out
    rng = np.random.default_rng(0)
    given: dict[tuple[str, str], float] = {}
    for rater, offset in (("alice", 4.0), ("bob", -4.0)):
        while (task := next_json(capsys, pool, rater))["kind"] == "score":
            key = task["images"][0]
            score = round(float(np.clip(8.0 * len(given) % 100 + offset + rng.normal(0, 3), 0, 100)), 2)
            code, out, err = cmr(capsys, "label", "answer", pool, "--rater", rater, "--image", key, "--score", score)
            assert code == 0, err
            given[(key, rater)] = score
        assert task["kind"] == "done"
    code, out, _ = cmr(capsys, "label", "status", pool)
    assert "24 scores (alice 12/12, bob 12/12, carol 0/12); 12 images scored by ≥ 2 raters" in out
    assert "Spearman ρ" in out and "class thresholds from the limits" in out
    status = json.loads(cmr(capsys, "label", "status", pool, "--json")[1])
    assert status["agreement"]["pooled"]["n"] == 12 and status["coverage"]["scored_twice"] == 12
    export = tmp_path / "export"
    code, out, err = cmr(capsys, "label", "export", pool, "--out", export)
    assert code == 0, err
    assert {p.name for p in export.iterdir()} == {"images", "lge_scores.csv", "lge_classes.csv", "bland_altman.png",
                                                 "summary.json"}
    rows = read_csv(export / "lge_scores.csv")
    assert list(rows[0]) == ["image", "slice", "score", "rater"] and len(rows) == 24
    slices = user_slices(export, "certainty", 32)  # what `cmr train lge-certainty --data` reads
    assert len(slices) == 12
    truth_of_key = {(r["image"], int(r["slice"])): r["key"] for r in read_csv(export / "lge_classes.csv")}
    for s in slices:
        key = truth_of_key[(s.meta["image"], s.meta["index"])]
        assert sorted(s.rater_scores) == sorted([given[(key, "alice")], given[(key, "bob")]])
    # the image the CSV names is the slice the raters saw
    from cmrlib.io import read_image
    from cmrlib.labelling.pool import Pool
    with Pool(pool) as p:
        row = rows[0]
        key = truth_of_key[(row["image"], int(row["slice"]))]
        np.testing.assert_array_equal(read_image(export / row["image"]).array[int(row["slice"])], p.pixels(key)[0])


def test_ranking_from_create_to_slice_levels_cmr_train_reads(tmp_path, capsys):
    from cmrlib.labelling.simulate import SimulatedRater
    from cmrlib.quality.data import user_slices
    files = stack_files(tmp_path / "in", n_stacks=3, n_slices=6)
    pool = tmp_path / "rank.sqlite"
    code, _, err = cmr(capsys, "label", "create", pool, tmp_path / "in", "--mode", "rank", "--raters", "r1",
                       "--seed", 1)
    assert code == 0, err
    from cmrlib.labelling.pool import Pool
    with Pool(pool) as p:  # truth: the slice index, from 0 (most basal) to 5
        levels = {im.key: im.slice / 5.0 for im in p.images()}
    rater = SimulatedRater("r1", level_sd=0.02, seed=4)
    batches = 0
    while (task := next_json(capsys, pool, "r1"))["kind"] == "rank":
        order = rater.order(task["images"], levels)
        code, out, err = cmr(capsys, "label", "answer", pool, "--rater", "r1", "--batch", task["batch"], "--order",
                             ",".join(order))
        assert code == 0, err
        batches += 1
    assert task["kind"] == "classify" and batches >= 7
    code, out, err = cmr(capsys, "label", "export", pool, "--out", tmp_path / "early")
    assert code == 1 and "no cut points yet" in err and not (tmp_path / "early").exists()
    code, out, _ = cmr(capsys, "label", "cut", pool, "--basal", 3, "--apical", 6)
    assert code == 0 and "3 too basal" in out
    code, out, _ = cmr(capsys, "label", "status", pool)
    assert "ranking done" in out and "cut points (set by hand): 3 too basal, 9 LV, 6 too apical" in out
    export = tmp_path / "export"
    code, out, err = cmr(capsys, "label", "export", pool, "--out", export)
    assert code == 0, err
    rows = read_csv(export / "slice_levels.csv")
    assert list(rows[0]) == ["image", "slice", "class", "rating"] and len(rows) == 18
    slices = user_slices(export, "slice-level", 32)  # what `cmr train slice-level --data` reads
    got = {(s.meta["image"], s.meta["index"]): s.slice_class for s in slices}
    assert sum(c == "too basal" for c in got.values()) == 3 and sum(c == "too apical" for c in got.values()) == 6
    # a near-perfect rater: the most basal slices (index 0) are too basal, the most apical (5) too apical
    assert all(got[(r["image"], int(r["slice"]))] == "too basal" for r in rows if r["slice"] == "0")
    assert all(got[(r["image"], int(r["slice"]))] == "too apical" for r in rows if r["slice"] == "5")
    ratings = [float(r["rating"]) for r in rows]
    assert ratings == sorted(ratings, reverse=True) and 0 <= min(ratings) < 1500 < max(ratings) <= 3000


def test_next_writes_the_images_as_png_for_a_headless_rater(tmp_path, capsys):
    files = stack_files(tmp_path / "in", 1, 3)
    pool = tmp_path / "p.sqlite"
    cmr(capsys, "label", "create", pool, *files, "--raters", "a")
    code, out, _ = cmr(capsys, "label", "next", pool, "--rater", "a", "--png", tmp_path / "show")
    key = out.splitlines()[1].strip()
    assert code == 0 and "a: score" in out and f"--image {key} --score S" in out
    from matplotlib.image import imread
    assert imread(tmp_path / "show" / f"{key}.png").shape[:2] == (20, 16)


def test_bad_input_is_one_line_and_changes_nothing(tmp_path, capsys, study_dir):
    files = stack_files(tmp_path / "in", 1, 3)
    pool = tmp_path / "p.sqlite"
    cmr(capsys, "label", "create", pool, *files, "--raters", "a")
    before = tree_snapshot(tmp_path)
    key = next_json(capsys, pool, "a")["images"][0]
    cases = [
        (("label", "create", pool, *files), "exists: a pool is never overwritten"),
        (("label", "create", tmp_path / "q.sqlite", tmp_path / "nothing"), "no such file or folder"),
        (("label", "create", tmp_path / "q.sqlite", study_dir / "cine"), "no short-axis stack to label"),
        (("label", "next", pool, "--rater", "zed"), "unknown rater 'zed'"),
        (("label", "answer", pool, "--rater", "a", "--image", key, "--score", "150"), "a score is a number 0–100"),
        (("label", "answer", pool, "--rater", "a", "--batch", "1", "--order", key), "is a visual-analogue"),
        (("label", "answer", pool, "--rater", "a", "--image", key), "give one answer"),
        (("label", "cut", pool, "--basal", "1", "--apical", "1"), "is a visual-analogue"),
        (("label", "export", pool, "--out", tmp_path / "out"), "no image has been scored yet"),
        (("label", "status", files[0]), "not a labelling pool"),
        (("label", "status", tmp_path / "missing.sqlite"), "no such labelling pool"),
    ]
    for argv, message in cases:
        code, out, err = cmr(capsys, *argv)
        assert code == 1 and err.startswith("cmr: error: ") and err.count("\n") == 1 and message in err, (argv, err)
    assert tree_snapshot(tmp_path) == before


def test_the_example_export_reads_back(tmp_path):
    from cmrlib.labelling.outputs import read_result, write_example
    write_example(tmp_path / "ex")
    result = read_result(tmp_path / "ex")
    assert result["summary"]["mode"] == "vas" and len(result["rows"]) == 12 and len(result["classes"]) == 6
    assert result["figure"] and Path(result["figure"]).is_file()
    pytest.importorskip("slicer")
    from cmrlib.mrml import new_scene, rows_from_table_node
    from CMRQualityLib.labelling import outputs_to_nodes
    nodes = outputs_to_nodes(new_scene(), result, "example")
    rows = rows_from_table_node(nodes.table)
    assert nodes.table.GetName() == "example labels" and len(rows) == 6
    assert set(rows[0]) == {"image", "slice", "mean score (0-100)", "raters", "certainty (25 / 75)",
                            "certainty (pool thresholds)"}
