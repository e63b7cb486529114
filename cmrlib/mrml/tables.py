"""Result rows (list of dicts, as the CLI writes to CSV) <-> vtkMRMLTableNode.

Column types: a column whose values are all numbers is a double column (missing -> NaN), one
whose values are all booleans (none missing) a bit column, anything else a string column
(missing -> ""). Columns appear in the order their keys are first seen.

On disk (``.tsv`` / ``.csv`` through vtkMRMLTableStorageNode, plus the ``.schema.tsv`` that
keeps the column types) Slicer writes doubles with 6 significant digits and does not escape
tabs, line breaks or double quotes inside text; :func:`check_table_writable` refuses such
text before anything is written rather than writing a file that reads back differently.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import slicer
import vtk

from ..errors import InputError
from ._attributes import is_number
from .scene import add_new_node, check_scene

_UNSAFE_TEXT = ("\t", "\n", "\r", '"')


def _missing(value: Any) -> bool:
    return value is None


def _column(name: str, values: list[Any]) -> vtk.vtkAbstractArray:
    present = [v for v in values if not _missing(v)]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present) and len(present) == len(values):
        array: vtk.vtkAbstractArray = vtk.vtkBitArray()
        for v in values:
            array.InsertNextValue(int(bool(v)))
    elif present and all(is_number(v) for v in present):
        array = vtk.vtkDoubleArray()
        for v in values:
            array.InsertNextValue(math.nan if _missing(v) else float(v))
    else:
        array = vtk.vtkStringArray()
        for v in values:
            array.InsertNextValue("" if _missing(v) else str(v))
    array.SetName(name)
    return array


def table_node_from_rows(scene: slicer.vtkMRMLScene, rows: list[dict[str, Any]], name: str,
                         node: slicer.vtkMRMLTableNode | None = None) -> slicer.vtkMRMLTableNode:
    """A table node with one row per dict of ``rows`` and one column per key (see module doc for types).

    Column names should carry units, e.g. ``"T1 (ms)"``, ``"scar (%)"``. With ``node`` given
    (a table node of ``scene``), its columns are replaced in place (a live result keeps one
    node); it is renamed to ``name`` unless ``name`` is empty.
    """
    check_scene(scene)
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, dict) for r in rows):
        raise InputError(f"rows must be a list of dicts (one per table row); got {type(rows).__name__}")
    columns: dict[str, None] = {}
    for row in rows:
        for key in row:
            if not isinstance(key, str) or not key:
                raise InputError(f"table column names must be non-empty strings; got {key!r}")
            columns.setdefault(key)
    if node is None:
        node = add_new_node(scene, "vtkMRMLTableNode", name or "Table")
    else:
        if not node.IsA("vtkMRMLTableNode"):
            raise InputError(f"node '{node.GetName()}' is a {node.GetClassName()}; a table node was expected")
        if node.GetScene() is not scene:
            raise InputError(f"table node '{node.GetName()}' is not in this scene")
        if name:
            node.SetName(name)
    was_modifying = node.StartModify()
    try:
        node.RemoveAllColumns()
        for column in columns:
            node.AddColumn(_column(column, [row.get(column) for row in rows]))
    finally:
        node.EndModify(was_modifying)
    return node


def _value(array: vtk.vtkAbstractArray, i: int) -> Any:
    if array.IsA("vtkBitArray"):
        return bool(array.GetValue(i))
    if array.IsA("vtkDataArray"):
        if array.GetNumberOfComponents() != 1:
            return [array.GetComponent(i, c) for c in range(array.GetNumberOfComponents())]
        value = array.GetValue(i)
        return float(value) if array.IsA("vtkDoubleArray") or array.IsA("vtkFloatArray") else value
    return array.GetValue(i) if array.IsA("vtkStringArray") else array.GetVariantValue(i).ToString()


def rows_from_table_node(node: slicer.vtkMRMLTableNode) -> list[dict[str, Any]]:
    """The table as a list of dicts (column name -> value); every row has every column.

    double -> float (NaN where a value was missing), bit -> bool, string -> str (missing ""),
    other integer columns (tables made elsewhere in Slicer) -> int.
    """
    if node is None or not node.IsA("vtkMRMLTableNode"):
        raise InputError(f"a table node is needed; got {node.GetClassName() if node is not None else None}")
    table = node.GetTable()
    columns = [table.GetColumn(c) for c in range(table.GetNumberOfColumns())]
    return [{col.GetName(): _value(col, i) for col in columns} for i in range(table.GetNumberOfRows())]


def check_table_writable(node: slicer.vtkMRMLTableNode) -> None:
    """Raise InputError when a column name or text cell would not survive Slicer's TSV/CSV writer."""
    table = node.GetTable()
    for c in range(table.GetNumberOfColumns()):
        col = table.GetColumn(c)
        texts = [(f"column name '{col.GetName()}'", col.GetName() or "")]
        if col.IsA("vtkStringArray"):
            texts += [(f"row {i} of column '{col.GetName()}'", col.GetValue(i)) for i in range(col.GetNumberOfValues())]
        for where, text in texts:
            bad = [repr(ch) for ch in _UNSAFE_TEXT if ch in text]
            if bad:
                raise InputError(f"table '{node.GetName()}': {where} contains {', '.join(bad)}, which Slicer's "
                                 f"table files cannot store; replace it before saving (text: {text!r})")
