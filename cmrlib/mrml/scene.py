"""A headless MRML scene wired like the Slicer application wires its own.

Inside 3D Slicer the modules pass ``slicer.mrmlScene``; everything else (the CLI, tests,
batch scripts on the ``slicer-core`` wheel) calls :func:`new_scene`. The module logics
registered here are not decoration: the Markups logic is what restores control points when
an ``.mrml`` file is imported, the Colors logic provides the default colour tables that
volume and label-map display nodes refer to, and the Sequences logic creates and updates the
proxy node of a sequence browser.
"""
from __future__ import annotations

import weakref
from typing import Any

import slicer
import vtk

from ..errors import InputError

# Logics of the scenes made by new_scene(), by scene address. The logics hold the scene
# (vtkMRMLAbstractLogic keeps a counted reference), so the scene cannot hold them back
# without a reference cycle that would leak every scene with all its image data. Instead a
# weakref finalizer on the Python scene object releases them when the caller drops the scene.
_LOGICS: dict[str, _SceneLogics] = {}


class _SceneLogics:
    """The application logic and module logics that serve one headless scene."""

    def __init__(self, scene: slicer.vtkMRMLScene) -> None:
        self.key = _scene_key(scene)
        self.app = slicer.vtkSlicerApplicationLogic()
        self.app.SetMRMLScene(scene)
        # Empty view collections: some logics ask the application logic for its slice/view
        # logics and expect a collection, not NULL (there are no views headless).
        self.app.SetSliceLogics(vtk.vtkCollection())
        self.app.SetViewLogics(vtk.vtkCollection())
        # The application logic's own colour logic adds the default colour tables (Grey,
        # GenericAnatomyColors, ...): display nodes of scalar and label volumes point to them.
        # vtkSlicerColorLogic would also look for colour files under the application's home
        # directory, which a wheel does not have; the base colour logic needs nothing more.
        colors = self.app.GetColorLogic()
        colors.SetMRMLScene(scene)
        colors.AddDefaultColorNodes()
        self.modules: dict[str, Any] = {}
        self._add("Colors", colors, scene)
        self._add("Volumes", slicer.vtkSlicerVolumesLogic(), scene)
        self._add("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic(), scene)
        self._add("Markups", slicer.vtkSlicerMarkupsLogic(), scene)
        sequences = getattr(slicer, "vtkSlicerSequencesLogic", None)
        if sequences is not None:  # present in slicer-core 5.11; optional in other builds
            self._add("Sequences", sequences(), scene)

    def _add(self, name: str, logic: Any, scene: slicer.vtkMRMLScene) -> None:
        logic.SetMRMLApplicationLogic(self.app)
        logic.SetMRMLScene(scene)
        self.app.SetModuleLogic(name, logic)
        self.modules[name] = logic

    def release(self) -> None:
        """Detach the module logics, then the application logic, so the scene can be freed even
        if someone still holds a logic.

        The Segmentations logic is the exception: detaching it explicitly logs a spurious
        "GetSubjectHierarchyNode: Invalid scene given" warning, while its destructor (run when
        the last reference here goes) detaches it quietly.
        """
        _LOGICS.pop(self.key, None)
        for name in reversed(list(self.modules)):
            logic = self.modules.pop(name)
            self.app.SetModuleLogic(name, None)
            if name != "Segmentations":
                logic.SetMRMLScene(None)
        self.app.SetMRMLScene(None)


def _scene_key(scene: slicer.vtkMRMLScene) -> str:
    return scene.GetAddressAsString("vtkMRMLScene")


def new_scene() -> slicer.vtkMRMLScene:
    """A new headless vtkMRMLScene with the Colors, Volumes, Segmentations, Markups and
    Sequences logics registered on a vtkSlicerApplicationLogic.

    The logics live exactly as long as the returned Python object: keep a reference to the
    scene while you use it (as with any VTK object); when the last reference goes the
    logics are released and the scene with all its nodes is freed.
    """
    scene = slicer.vtkMRMLScene()
    logics = _SceneLogics(scene)
    _LOGICS[logics.key] = logics
    weakref.finalize(scene, logics.release)
    return scene


def module_logic(scene: slicer.vtkMRMLScene, name: str) -> Any | None:
    """The module logic ``name`` ("Colors", "Volumes", "Segmentations", "Markups", "Sequences")
    serving ``scene``, or None when there is none we can reach.

    Headless scenes from :func:`new_scene` answer from their own registry. Inside the Slicer
    application the modules' logics are found through ``slicer.app``'s application logic
    (only looked up, never imported from Qt).
    """
    logics = _LOGICS.get(_scene_key(scene))
    if logics is not None:
        return logics.modules.get(name)
    app = getattr(slicer, "app", None)
    if app is not None and getattr(slicer, "mrmlScene", None) is scene:
        try:
            return app.applicationLogic().GetModuleLogic(name)
        except AttributeError:  # an application without a reachable application logic
            return None
    return None


def check_scene(scene: Any) -> None:
    """Raise InputError unless ``scene`` is a vtkMRMLScene (a common slip: passing a node)."""
    if scene is None or not hasattr(scene, "IsA") or not scene.IsA("vtkMRMLScene"):
        raise InputError(f"a vtkMRMLScene is needed; got {type(scene).__name__}")


def add_new_node(scene: slicer.vtkMRMLScene, class_name: str, name: str) -> Any:
    """A new node of ``class_name`` named ``name``, added to ``scene``.

    Unlike ``scene.AddNewNodeByClass`` this does not need the class to be registered with
    the scene (a bare ``vtkMRMLScene()`` knows no markups or sequence nodes until their
    module logic registers them), so the adapters also work on a scene without logics.
    """
    node = getattr(slicer, class_name)()
    node.SetName(name)
    scene.AddNode(node)
    return node
