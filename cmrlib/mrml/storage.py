"""Files <-> nodes through MRML storage nodes, and whole scenes (``.mrml`` + data files).

``slicer.util.saveNode`` / ``loadVolume`` need the Slicer application; the storage nodes
they use underneath work headless and are used here directly, so files written here are
exactly what Slicer writes and reads (``.nrrd``, ``.seg.nrrd``, ``.mrk.json``, ``.tsv``,
``.seq.nrrd``). Images are written in LPS (NRRD ``space: left-posterior-superior``), so
SimpleITK and :mod:`cmrlib.io` read them with the same origin as the :class:`cmrlib.Image`.

What a file keeps: voxels and geometry, segment names/colours/label values, control points
and labels, table columns and types (doubles to 6 significant digits: Slicer's table
writer), sequence index values. Node attributes (the ``CMR.`` metadata) are kept by the
``.mrml`` scene file, and by ``.seq.nrrd`` (Slicer writes sequence and per-frame attributes
into its header), but not by a volume's ``.nrrd``: use :func:`save_scene` to keep them.
"""
from __future__ import annotations

import re
from pathlib import Path

import slicer

from ..errors import InputError
from .scene import add_new_node, check_scene, new_scene
from .sequences import _add_browser
from .tables import check_table_writable

# (node class, file name endings, storage node class): first match wins, so specific
# endings (.seg.nrrd, .seq.nrrd) come before the plain .nrrd of volumes.
_WRITERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("vtkMRMLSequenceNode", (".seq.nrrd", ".seq.nhdr"), "vtkMRMLVolumeSequenceStorageNode"),
    ("vtkMRMLSequenceNode", (".seq.mrb", ".mrb"), "vtkMRMLSequenceStorageNode"),
    ("vtkMRMLSegmentationNode", (".seg.nrrd", ".seg.nhdr", ".nrrd", ".nhdr"), "vtkMRMLSegmentationStorageNode"),
    ("vtkMRMLVolumeNode", (".nrrd", ".nhdr", ".nii.gz", ".nii", ".mha", ".mhd"), "vtkMRMLVolumeArchetypeStorageNode"),
    ("vtkMRMLMarkupsNode", (".mrk.json", ".json"), "vtkMRMLMarkupsJsonStorageNode"),
    ("vtkMRMLMarkupsFiducialNode", (".fcsv",), "vtkMRMLMarkupsFiducialStorageNode"),
    ("vtkMRMLTableNode", (".tsv", ".csv", ".txt"), "vtkMRMLTableStorageNode"),
)

# What save_scene writes for each kind of node (the first ending of its _WRITERS entry).
_SCENE_EXTENSIONS: tuple[tuple[str, str], ...] = (
    ("vtkMRMLSegmentationNode", ".seg.nrrd"),
    ("vtkMRMLVolumeNode", ".nrrd"),
    ("vtkMRMLMarkupsNode", ".mrk.json"),
    ("vtkMRMLTableNode", ".tsv"),
)


def _ending(path: Path, endings: tuple[str, ...]) -> str | None:
    lower = path.name.lower()
    return next((e for e in endings if lower.endswith(e)), None)


def _stem(path: Path) -> str:
    """File name without its (possibly double, e.g. ``.seg.nrrd``) extension."""
    name = path.name
    for ending in sorted({e for _, endings, _ in _WRITERS for e in endings}, key=len, reverse=True):
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return path.stem


def _is_volume_sequence(node) -> bool:  # noqa: ANN001 - vtkMRMLSequenceNode
    return node.GetNumberOfDataNodes() > 0 and node.GetNthDataNode(0).IsA("vtkMRMLVolumeNode")


def _storage_for(node, path: Path):  # noqa: ANN001, ANN202 - vtkMRMLStorableNode -> vtkMRMLStorageNode
    """The storage node that writes ``node`` to ``path`` (the node's own one when it fits)."""
    for node_class, endings, storage_class in _WRITERS:
        if not node.IsA(node_class) or _ending(path, endings) is None:
            continue
        if storage_class == "vtkMRMLVolumeSequenceStorageNode" and not _is_volume_sequence(node):
            continue  # a .seq.nrrd holds volumes only; other sequences go to .seq.mrb
        current = node.GetStorageNode()
        if current is not None and current.GetClassName() == storage_class:
            return current
        storage = getattr(slicer, storage_class)()
        node.GetScene().AddNode(storage)
        if current is not None:
            node.GetScene().RemoveNode(current)
        node.SetAndObserveStorageNodeID(storage.GetID())
        return storage
    if any(node.IsA(node_class) for node_class, _, _ in _WRITERS):
        # A storage node's SupportedFileType() is too lenient to decide (the volume storage
        # node accepts ".json"), so the kinds listed above only get the endings listed.
        raise InputError(f"a {node.GetClassName()} ('{node.GetName()}') cannot be written as '{path.name}'; "
                         f"supported endings: {_endings_for(node)}")
    # Kinds of node this module does not create (models, transforms, ...): their default.
    current = node.GetStorageNode()
    if current is not None and current.SupportedFileType(str(path)):
        return current
    created = node.CreateDefaultStorageNode()
    if created is not None and created.SupportedFileType(str(path)):
        node.GetScene().AddNode(created)
        node.SetAndObserveStorageNodeID(created.GetID())
        return created
    raise InputError(f"a {node.GetClassName()} ('{node.GetName()}') cannot be written as '{path.name}'; "
                     f"supported endings: {_endings_for(node)}")


def _endings_for(node) -> list[str]:  # noqa: ANN001
    endings = [e for node_class, ends, _ in _WRITERS if node.IsA(node_class) for e in ends]
    return endings or ["(the node type's default)"]


def save_node(node, path: str | Path) -> Path:  # noqa: ANN001 - any vtkMRMLStorableNode in a scene
    """Write ``node``'s data to ``path`` through a storage node; returns the absolute path.

    The file type follows the ending: volumes ``.nrrd`` (also ``.nii.gz``, ``.mha``),
    segmentations ``.seg.nrrd``, markups ``.mrk.json`` (or ``.fcsv``), tables ``.tsv`` /
    ``.csv``, volume sequences ``.seq.nrrd``. The node keeps the storage node (as after
    saving in Slicer). A failed write leaves no new file behind.
    """
    if node is None or not node.IsA("vtkMRMLStorableNode"):
        raise InputError(f"a storable MRML node is needed; got {node.GetClassName() if node is not None else None}")
    if node.GetScene() is None:
        raise InputError(f"node '{node.GetName()}' is not in a scene; add it to one before saving "
                         "(a scene from new_scene() is freed once no Python name refers to it)")
    path = Path(path).expanduser().absolute()
    if node.IsA("vtkMRMLTableNode"):
        check_table_writable(node)
    storage = _storage_for(node, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    storage.SetFileName(str(path))
    if not storage.WriteData(node):
        if not existed and path.exists():
            path.unlink()
        raise InputError(f"could not write '{node.GetName()}' to {path}")
    return path


def _check_file(path: str | Path) -> Path:
    p = Path(path).expanduser().absolute()
    if not p.is_file():
        raise InputError(f"no file at {p}")
    return p


def _read(scene: slicer.vtkMRMLScene, path: Path, node_class: str, storage_class: str, name: str | None):  # noqa: ANN202
    """A new ``node_class`` node read from ``path`` by a new ``storage_class`` node."""
    check_scene(scene)
    storage = getattr(slicer, storage_class)()
    storage.SetFileName(str(path))
    scene.AddNode(storage)
    node = add_new_node(scene, node_class, name or _stem(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    if not storage.ReadData(node):
        # Nothing partial stays in the scene.
        scene.RemoveNode(node)
        scene.RemoveNode(storage)
        raise InputError(f"{path} could not be read as a {node_class.replace('vtkMRML', '').replace('Node', '')} file")
    if hasattr(node, "CreateDefaultDisplayNodes") and node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    return node


def load_volume(scene: slicer.vtkMRMLScene, path: str | Path, name: str | None = None,
                labelmap: bool = False) -> slicer.vtkMRMLScalarVolumeNode:
    """A scalar volume (or, with ``labelmap=True``, a label-map volume) node read from an image file."""
    node_class = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    return _read(scene, _check_file(path), node_class, "vtkMRMLVolumeArchetypeStorageNode", name)


def load_segmentation(scene: slicer.vtkMRMLScene, path: str | Path,
                      name: str | None = None) -> slicer.vtkMRMLSegmentationNode:
    """A segmentation node read from a ``.seg.nrrd`` (segment names, colours and label values kept)."""
    return _read(scene, _check_file(path), "vtkMRMLSegmentationNode", "vtkMRMLSegmentationStorageNode", name)


def load_markups(scene: slicer.vtkMRMLScene, path: str | Path, name: str | None = None) -> slicer.vtkMRMLMarkupsNode:
    """A markups node read from ``.mrk.json`` (its own markups type, e.g. a point list) or ``.fcsv``."""
    p = _check_file(path)
    if _ending(p, (".fcsv",)):
        return _read(scene, p, "vtkMRMLMarkupsFiducialNode", "vtkMRMLMarkupsFiducialStorageNode", name)
    check_scene(scene)
    reader = slicer.vtkMRMLMarkupsJsonStorageNode()
    scene.AddNode(reader)
    # Creates the markups node of the class the file names (point list, curve, ...).
    node = reader.AddNewMarkupsNodeFromFile(str(p), name or _stem(p))
    if node is None:
        scene.RemoveNode(reader)
        raise InputError(f"{p} could not be read as a markups file")
    # Like any loaded node it keeps the storage node it came from (file name, LPS).
    reader.SetFileName(str(p))
    node.SetAndObserveStorageNodeID(reader.GetID())
    return node


def load_table(scene: slicer.vtkMRMLScene, path: str | Path, name: str | None = None) -> slicer.vtkMRMLTableNode:
    """A table node read from ``.tsv`` / ``.csv`` (column types from the ``.schema.tsv`` beside it)."""
    return _read(scene, _check_file(path), "vtkMRMLTableNode", "vtkMRMLTableStorageNode", name)


def load_sequence(scene: slicer.vtkMRMLScene, path: str | Path, name: str | None = None) -> slicer.vtkMRMLSequenceNode:
    """A volume sequence node read from ``.seq.nrrd`` (or ``.seq.mrb``), with a browser and proxy volume."""
    p = _check_file(path)
    storage_class = "vtkMRMLSequenceStorageNode" if _ending(p, (".mrb",)) else "vtkMRMLVolumeSequenceStorageNode"
    node = _read(scene, p, "vtkMRMLSequenceNode", storage_class, name)
    _add_browser(scene, node)
    return node


def load_node(scene: slicer.vtkMRMLScene, path: str | Path):  # noqa: ANN201 - the loaded vtkMRMLNode
    """Load any file this module writes, choosing the node type from the file ending."""
    p = _check_file(path)
    if _ending(p, (".seq.nrrd", ".seq.nhdr", ".seq.mrb")):
        return load_sequence(scene, p)
    if _ending(p, (".seg.nrrd", ".seg.nhdr")):
        return load_segmentation(scene, p)
    if _ending(p, (".mrk.json", ".json", ".fcsv")):
        return load_markups(scene, p)
    if _ending(p, (".tsv", ".csv", ".txt")):
        return load_table(scene, p)
    if _ending(p, (".nrrd", ".nhdr", ".nii.gz", ".nii", ".mha", ".mhd")):
        return load_volume(scene, p)
    raise InputError(f"unknown file type '{p.name}'; expected .nrrd, .nii.gz, .mha, .seg.nrrd, .seq.nrrd, "
                     ".mrk.json, .fcsv, .tsv or .csv")


def _scene_extension(node) -> str:  # noqa: ANN001
    if node.IsA("vtkMRMLSequenceNode"):
        return ".seq.nrrd" if _is_volume_sequence(node) else ".seq.mrb"
    for node_class, ext in _SCENE_EXTENSIONS:
        if node.IsA(node_class):
            return ext
    storage = node.GetStorageNode() or node.CreateDefaultStorageNode()
    ext = storage.GetDefaultWriteFileExtension() if storage is not None else None
    if not ext:
        raise InputError(f"no file type is known for {node.GetClassName()} '{node.GetName()}'")
    return "." + ext.lstrip(".")


def _file_name(name: str, ext: str, used: set[str]) -> str:
    # Portable file names: node names like "T1 map (ms) / rest" become "T1_map_ms_rest".
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "node"
    candidate, k = base + ext, 1
    while candidate.lower() in used:
        candidate, k = f"{base}_{k}{ext}", k + 1
    used.add(candidate.lower())
    return candidate


def save_scene(scene: slicer.vtkMRMLScene, folder: str | Path, name: str = "scene") -> Path:
    """Write every storable node's data into ``folder`` and the scene as ``folder/<name>.mrml``.

    Data files are named after the nodes; their paths in the ``.mrml`` are relative, so the
    folder can be moved or zipped as a whole. As in Slicer's "Save", the scene's URL and the
    nodes' storage nodes then point into ``folder``. Returns the path of the ``.mrml``.
    """
    check_scene(scene)
    root = Path(folder).expanduser().absolute()
    root.mkdir(parents=True, exist_ok=True)
    nodes = scene.GetNodesByClass("vtkMRMLStorableNode")
    storable = [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())]
    # Only nodes that belong in the scene file and have data (default colour tables do not).
    storable = [n for n in storable if n.GetSaveWithScene() and _has_data(n)]
    # Check every table before writing anything, so a refused table leaves no half-saved scene.
    for node in storable:
        if node.IsA("vtkMRMLTableNode"):
            check_table_writable(node)
    used: set[str] = set()
    for node in storable:
        save_node(node, root / _file_name(node.GetName() or node.GetID(), _scene_extension(node), used))
    mrml = root / f"{name}.mrml"
    scene.SetRootDirectory(str(root))
    scene.SetURL(str(mrml))
    if not scene.Commit():
        raise InputError(f"could not write the scene file {mrml}")
    return mrml


def _has_data(node) -> bool:  # noqa: ANN001
    if node.IsA("vtkMRMLVolumeNode"):
        return node.GetImageData() is not None
    if node.IsA("vtkMRMLSequenceNode"):
        return node.GetNumberOfDataNodes() > 0
    return True


def load_scene(mrml_path: str | Path) -> slicer.vtkMRMLScene:
    """A new headless scene (:func:`cmrlib.mrml.new_scene`) holding the scene file's nodes and data."""
    path = _check_file(mrml_path)
    scene = new_scene()
    scene.SetURL(str(path))
    scene.SetRootDirectory(str(path.parent))
    messages = slicer.vtkMRMLMessageCollection()
    # Import() is false for a malformed .mrml and also when a data file the scene lists is
    # missing or unreadable: both leave an incomplete scene, so both are errors.
    if not scene.Import(messages):
        details = messages.GetAllMessagesAsString().strip() or "syntax error in the scene file"
        raise InputError(f"{path} could not be imported as an MRML scene: {details}")
    return scene
