"""Result rows <-> vtkMRMLTableNode on the real slicer-core libraries."""
from __future__ import annotations

import math

import numpy as np
import pytest
import slicer  # noqa: F401 - plain import: a missing slicer-core wheel must fail, not skip

from cmrlib import InputError
from cmrlib.mrml import load_table, new_scene, rows_from_table_node, save_node, table_node_from_rows

pytestmark = pytest.mark.mrml

ROWS = [
    {"slice": 1, "level": "basal", "T1 (ms)": 1012.5, "dT1 (%)": 6.25, "low certainty": False},
    {"slice": 2, "level": "mid", "T1 (ms)": np.float32(998.0), "dT1 (%)": None, "low certainty": True},
    {"slice": 3, "level": None, "T1 (ms)": 1100.0, "note": "AHA 7-12", "low certainty": False},
]


def _column_classes(node) -> dict[str, str]:
    table = node.GetTable()
    return {table.GetColumn(c).GetName(): table.GetColumn(c).GetClassName()
            for c in range(table.GetNumberOfColumns())}


def _check(rows: list[dict]) -> None:
    assert [list(r) for r in rows] == [["slice", "level", "T1 (ms)", "dT1 (%)", "low certainty", "note"]] * 3
    assert [r["slice"] for r in rows] == [1.0, 2.0, 3.0]
    assert [r["T1 (ms)"] for r in rows] == [1012.5, 998.0, 1100.0]
    assert rows[0]["dT1 (%)"] == 6.25 and math.isnan(rows[1]["dT1 (%)"]) and math.isnan(rows[2]["dT1 (%)"])
    assert [r["level"] for r in rows] == ["basal", "mid", ""]
    assert [r["note"] for r in rows] == ["", "", "AHA 7-12"]
    assert [r["low certainty"] for r in rows] == [False, True, False]


def test_round_trip_typed_columns():
    scene = new_scene()
    node = table_node_from_rows(scene, ROWS, "T1 per slice")
    assert node.IsA("vtkMRMLTableNode") and node.GetScene() is scene and node.GetName() == "T1 per slice"
    classes = _column_classes(node)
    assert classes["T1 (ms)"] in ("vtkDoubleArray", "vtkTypeFloat64Array")
    assert classes["slice"] in ("vtkDoubleArray", "vtkTypeFloat64Array")
    assert classes["level"] == classes["note"] == "vtkStringArray"
    assert classes["low certainty"] == "vtkBitArray"
    _check(rows_from_table_node(node))


def test_tsv_file_keeps_column_types(tmp_path):
    scene = new_scene()
    path = save_node(table_node_from_rows(scene, ROWS, "T1 per slice"), tmp_path / "t1.tsv")
    assert path.is_file() and (tmp_path / "t1.schema.tsv").is_file()
    _check(rows_from_table_node(load_table(new_scene(), path)))


def test_tsv_doubles_keep_six_significant_digits(tmp_path):
    # Slicer's table writer prints doubles with 6 significant digits: document, do not hide it.
    scene = new_scene()
    path = save_node(table_node_from_rows(scene, [{"dice": 0.912345678}], "t"), tmp_path / "t.tsv")
    value = rows_from_table_node(load_table(new_scene(), path))[0]["dice"]
    assert value == pytest.approx(0.912345678, rel=1e-5) and value != 0.912345678


def test_text_the_tsv_writer_would_break_is_refused_before_writing(tmp_path):
    scene = new_scene()
    node = table_node_from_rows(scene, [{"comment": 'says "ok"\tthen'}], "t")
    assert rows_from_table_node(node) == [{"comment": 'says "ok"\tthen'}]  # fine in memory
    with pytest.raises(InputError, match="cannot store"):
        save_node(node, tmp_path / "t.tsv")
    assert not (tmp_path / "t.tsv").exists()


def test_empty_and_bad_rows():
    scene = new_scene()
    assert rows_from_table_node(table_node_from_rows(scene, [], "empty")) == []
    with pytest.raises(InputError, match="list of dicts"):
        table_node_from_rows(scene, {"a": 1}, "bad")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="column names"):
        table_node_from_rows(scene, [{1: "a"}], "bad")  # type: ignore[dict-item]
