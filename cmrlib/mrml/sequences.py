"""Sequence :class:`cmrlib.Image` (frames) <-> vtkMRMLSequenceNode + vtkMRMLSequenceBrowserNode.

Each frame becomes one scalar volume data node of the sequence. Per-frame metadata
(``frame_meta``, e.g. InversionTime in ms) is stored three ways, each for its own reader:

* as ``CMR.<key>`` attributes of each data node, so the proxy volume a Slicer user browses
  shows the facts of the frame on display;
* as the sequence index where it is meaningful: index ``InversionTime`` (ms) when every
  frame has a distinct one (IRW images), else ``TriggerTime`` (ms) likewise (cine), else
  ``frame`` (0, 1, ...) -- Slicer's sequence browser then steps through inversion times;
* as JSON on the sequence node (``CMRSequence.*`` attributes) in acquisition order,
  because a numeric index is kept sorted by value (MOLLI frames are acquired out of TI
  order) and the acquisition order would otherwise be lost.

Series metadata (``meta``) is stored as ``CMR.<key>`` attributes of the sequence node. A
``.seq.nrrd`` written by Slicer's volume-sequence storage keeps all of these (node and
per-item attributes become header fields), so a sequence file read on its own comes back
complete.

Series metadata (``meta``) is stored as ``CMR.<key>`` attributes of the sequence node.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import slicer

from ..errors import InputError
from ..image import Image
from . import _attributes
from ._arrays import array_from_image_data
from .scene import add_new_node, check_scene, module_logic
from .volumes import set_volume_content, volume_geometry_lps

#: Frame keys that may serve as the sequence index, in order of preference, with units.
INDEX_CANDIDATES: tuple[tuple[str, str], ...] = (("InversionTime", "ms"), ("TriggerTime", "ms"))
#: Attribute prefix of the sequence-level bookkeeping (kept apart from the user's ``CMR.`` meta).
_SEQ = "CMRSequence."


def _index_text(value: float) -> str:
    # Shortest text that reads back as the same float ("120", "1020.5"): what the Slicer
    # sequence browser shows, and what the .seq.nrrd header stores.
    return np.format_float_positional(float(value), trim="-")


def _choose_index(frame_meta: list[dict[str, Any]], n_frames: int,
                  tolerance: float) -> tuple[str, str, list[str]]:
    """(index name, unit, index value per frame in frame order) for a new sequence node.

    A key qualifies when every frame has a finite number for it and no two frames' values
    fall within ``tolerance`` of each other: the sequence node treats such values as the
    same item and would overwrite one frame with another.
    """
    if len(frame_meta) == n_frames:
        for key, unit in INDEX_CANDIDATES:
            values = [fm.get(key) for fm in frame_meta]
            if not all(_attributes.finite_number(v) for v in values):
                continue
            texts = [_index_text(v) for v in values]
            ordered = np.sort(np.array([float(t) for t in texts]))
            if n_frames < 2 or np.min(np.diff(ordered)) > tolerance:
                return key, unit, texts
    return "frame", "", [str(k) for k in range(n_frames)]


def sequence_node_from_image(scene: slicer.vtkMRMLScene, image: Image, name: str) -> slicer.vtkMRMLSequenceNode:
    """A sequence node with one scalar volume data node per frame of ``image``, plus a browser.

    The sequence browser node (see :func:`browser_node_for`) has a proxy scalar volume
    showing the selected frame, so the series is browsable frame by frame in Slicer.
    Returns the sequence node.
    """
    check_scene(scene)
    if not isinstance(image, Image):
        raise InputError(f"sequence_node_from_image needs a cmrlib Image; got {type(image).__name__}")
    if not image.is_sequence:
        raise InputError(f"'{name}' is a single volume (is_sequence=False); use volume_node_from_image, "
                         "or build a sequence Image with is_sequence=True")
    frames = image.frames()
    frame_meta = [dict(fm) for fm in image.frame_meta] if image.frame_meta else [{} for _ in range(image.n_frames)]
    seq = slicer.vtkMRMLSequenceNode()
    seq.SetName(name or "Sequence")
    index_name, unit, values = _choose_index(frame_meta, image.n_frames, seq.GetNumericIndexValueTolerance())
    seq.SetIndexName(index_name)
    seq.SetIndexUnit(unit)
    seq.SetIndexType(slicer.vtkMRMLSequenceNode.NumericIndex)
    # The whole sequence, frames included, is built before it enters the scene, so metadata
    # or voxels that cannot be stored raise here and leave the scene untouched.
    _attributes.set_meta(seq, image.meta)
    seq.SetAttribute(_SEQ + "frame_meta", _attributes.encode(frame_meta, "frame_meta"))
    seq.SetAttribute(_SEQ + "index_values", _attributes.encode(values, "index_values"))
    seq.SetAttribute(_SEQ + "array_ndim", str(image.array.ndim))
    for k, (frame, value) in enumerate(zip(frames, values, strict=True)):
        data = slicer.vtkMRMLScalarVolumeNode()
        data.SetName(f"{seq.GetName()} {index_name} {value}")
        set_volume_content(data, frame, image.spacing, image.origin, image.direction, f"frame {k} of '{name}'")
        _attributes.set_meta(data, frame_meta[k])
        seq.SetDataNodeAtValue(data, value)  # copies the node into the sequence's own scene
    scene.AddNode(seq)
    _add_browser(scene, seq)
    return seq


def _add_browser(scene: slicer.vtkMRMLScene, seq: slicer.vtkMRMLSequenceNode) -> slicer.vtkMRMLSequenceBrowserNode:
    """A browser node for ``seq`` with its proxy volume (first item selected)."""
    browser = add_new_node(scene, "vtkMRMLSequenceBrowserNode", f"{seq.GetName()} browser")
    # Newer Slicer renames "master" to "primary"; accept either spelling.
    set_primary = getattr(browser, "SetAndObservePrimarySequenceNodeID", None) or \
        browser.SetAndObserveMasterSequenceNodeID
    set_primary(seq.GetID())
    browser.SetSelectedItemNumber(0)
    if browser.GetProxyNode(seq) is None:
        # The Sequences logic of new_scene() or of the Slicer app creates the proxy as soon as
        # the browser has a sequence; a bare vtkMRMLScene has none, so borrow one briefly.
        logic = module_logic(scene, "Sequences")
        if logic is None:
            logic = slicer.vtkSlicerSequencesLogic()
            logic.SetMRMLScene(scene)
        logic.UpdateProxyNodesFromSequences(browser)
    proxy = browser.GetProxyNode(seq)
    if proxy is not None and hasattr(proxy, "CreateDefaultDisplayNodes") and proxy.GetDisplayNode() is None:
        proxy.CreateDefaultDisplayNodes()
    return browser


def browser_node_for(sequence_node: slicer.vtkMRMLSequenceNode) -> slicer.vtkMRMLSequenceBrowserNode | None:
    """The first sequence browser node in the scene that browses ``sequence_node``, or None."""
    scene = sequence_node.GetScene()
    if scene is None:
        return None
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSequenceBrowserNode")):
        browser = scene.GetNthNodeByClass(i, "vtkMRMLSequenceBrowserNode")
        if browser.IsSynchronizedSequenceNode(sequence_node.GetID(), True):
            return browser
    return None


def proxy_node_for(sequence_node: slicer.vtkMRMLSequenceNode):  # noqa: ANN201 - vtkMRMLNode | None
    """The proxy node (the browsable volume of the selected frame) of ``sequence_node``, or None."""
    browser = browser_node_for(sequence_node)
    return browser.GetProxyNode(sequence_node) if browser is not None else None


def _same_grid(a: tuple[tuple[int, ...], tuple, tuple, np.ndarray],
               b: tuple[tuple[int, ...], tuple, tuple, np.ndarray], tol_mm: float = 1e-6) -> bool:
    return (a[0] == b[0] and np.allclose(a[1], b[1], atol=tol_mm, rtol=0)
            and np.allclose(a[2], b[2], atol=tol_mm, rtol=0) and np.allclose(a[3], b[3], atol=1e-9, rtol=0))


def image_from_sequence_node(seq_node: slicer.vtkMRMLSequenceNode) -> Image:
    """The sequence :class:`cmrlib.Image` (``is_sequence=True``) of a volume sequence node.

    Frames come back in acquisition order when the sequence was written by
    :func:`sequence_node_from_image` (else in sequence order), with ``frame_meta`` from the
    data nodes' ``CMR.`` attributes, else from the sequence's stored JSON; the index value
    fills in its own key (e.g. ``{"InversionTime": 120.0}`` for an ``InversionTime`` index),
    so a 4-D NRRD made by another tool still gives its inversion times. All frames must share
    one grid; an array ``[frame,row,col]`` is returned for single-slice frames unless the
    sequence was made from a ``[frame,slice,row,col]`` array.
    """
    if seq_node is None or not seq_node.IsA("vtkMRMLSequenceNode"):
        raise InputError(f"a sequence node is needed; got {seq_node.GetClassName() if seq_node is not None else None}")
    name = seq_node.GetName()
    n = seq_node.GetNumberOfDataNodes()
    if n == 0:
        raise InputError(f"sequence '{name}' has no frames")
    index_name = seq_node.GetIndexName() or "frame"
    stored_meta = _attributes.decode(seq_node.GetAttribute(_SEQ + "frame_meta"))
    stored_values = _attributes.decode(seq_node.GetAttribute(_SEQ + "index_values"))
    if not (isinstance(stored_meta, list) and isinstance(stored_values, list)
            and len(stored_meta) == len(stored_values)):
        stored_meta, stored_values = [], []
    frames: list[tuple[int, np.ndarray, dict[str, Any]]] = []
    grid = None
    for i in range(n):
        data = seq_node.GetNthDataNode(i)
        value = seq_node.GetNthIndexValue(i)
        if data is None or not data.IsA("vtkMRMLScalarVolumeNode"):
            kind = data.GetClassName() if data is not None else "nothing"
            raise InputError(f"sequence '{name}' item {value} holds {kind}; a sequence of scalar volumes was expected")
        array = array_from_image_data(data.GetImageData(), f"frame {value} of sequence '{name}'")
        this_grid = (array.shape, *volume_geometry_lps(data))
        if grid is None:
            grid = this_grid
        elif not _same_grid(grid, this_grid):  # type: ignore[arg-type]
            raise InputError(f"frame {index_name}={value} of sequence '{name}' is on a different grid "
                             f"(shape {array.shape}, spacing {this_grid[1]}) than the first frame "
                             f"(shape {grid[0]}, spacing {grid[1]}); resample the frames onto one grid first")
        # Acquisition position: from the stored index values, else after all known frames.
        order = stored_values.index(value) if value in stored_values else len(stored_values) + i
        meta = _attributes.get_meta(data)
        if not meta and value in stored_values:
            meta = dict(stored_meta[stored_values.index(value)])
        if index_name != "frame" and index_name not in meta:
            try:
                meta[index_name] = float(value)
            except ValueError:  # a text index (e.g. from another tool) is kept as text
                meta[index_name] = value
        frames.append((order, array, meta))
    frames.sort(key=lambda f: f[0])
    stack = np.stack([f[1] for f in frames])
    ndim = _attributes.decode(seq_node.GetAttribute(_SEQ + "array_ndim"))
    if stack.shape[1] == 1 and ndim != 4:
        stack = stack[:, 0]
    assert grid is not None
    return Image(stack, grid[1], grid[2], grid[3], True, _attributes.get_meta(seq_node),  # type: ignore[arg-type]
                 [f[2] for f in frames])
