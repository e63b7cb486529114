"""CMRQuality's LGE certainty and slice-level adapter (Qt-free): an LGE volume node → `cmr quality
certainty` worker arguments → a per-slice table node; the kind check; the scene watcher that
notices LGE volumes as they arrive.

* :func:`check_lge_node` / :func:`lge_image`: the input check the CLI makes
  (:func:`cmrlib.quality.pipeline.check_series_kind`) on the series kind the study loader stored
  on the node (``CMR.kind``): a cine, T1 map, IRW, VNE, fit map, colour display or 3-D LA LGE
  volume is refused with a one-line message naming the kind, before any file is written.
* :func:`certainty_arguments`: the LGE volume written into a work folder as NRRD (its series
  metadata in the header, so the worker checks the same kind) and the `cmr quality certainty`
  arguments (``cmrlib/quality/cli.py``).
* :func:`outputs_to_nodes` (the record's ``adapter``): the dict that
  ``cmrlib.quality.outputs.read_result`` returns becomes the table node "<name> quality", one row
  per slice (slice number from 1, level, the three level probabilities, p(low certainty),
  verdict), optionally without the slices outside the LV; :class:`QualityOutputs` keeps the
  summary (the stack's one-line verdict) and the montage PNG for the panel.
* :class:`LGEArrivalWatcher`: calls back once per LGE scalar volume added to the scene, when its
  image data is there ("Watch for new LGE").

Method cards: docs/methods/lge-certainty.md, docs/methods/slice-level.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from cmrlib.errors import InputError
from cmrlib.quality.data import SLICE_CLASSES

#: File name of the worker's input in the work folder.
LGE_INPUT = "lge.nrrd"
#: Columns of the per-slice table node (and of the panel's table), in order.
PROBABILITY_COLUMNS = tuple(f"p({c})" for c in SLICE_CLASSES)  # p(too basal), p(LV), p(too apical)
TABLE_COLUMNS = ("slice", "level", *PROBABILITY_COLUMNS, "p(low certainty)", "verdict")
EQUIVOCAL, CLEAR, NOT_ASSESSED = "equivocal", "clear", "not assessed"
#: The panel's range of the operating threshold (probability of low certainty that flags a slice).
THRESHOLD_RANGE = (0.05, 0.95)
#: Used by `cmr quality certainty` when the certainty model carries no calibrated threshold.
FALLBACK_THRESHOLD = 0.5
#: A description naming LGE or PSIR (a volume without the study loader's kind, e.g. loaded by
#: Slicer's DICOM module: its name is "<series number>: <description>").
_LGE_DESCRIPTION = re.compile(r"(?<![a-z])lge(?![a-z])|psir", re.IGNORECASE)
#: The CLI's hint in check_series_kind's refusal; the panel has no --force.
_CLI_FORCE_HINT = "; --force classifies it anyway"


# ---- the input ---------------------------------------------------------------------------------
def _is_scalar_volume(node: Any) -> bool:
    return node is not None and node.IsA("vtkMRMLScalarVolumeNode") and not node.IsA("vtkMRMLLabelMapVolumeNode")


def series_node(node: Any) -> Any:
    """The node that carries ``node``'s series attributes: the sequence whose browser shows ``node``
    (the proxy volume of a cine or IRW series the study loader loaded: the selector offers it as a
    scalar volume), else ``node`` itself."""
    scene = node.GetScene() if node is not None else None
    if scene is None:
        return node
    browsers = scene.GetNodesByClass("vtkMRMLSequenceBrowserNode")
    for i in range(browsers.GetNumberOfItems()):
        sequence = browsers.GetItemAsObject(i).GetSequenceNode(node)
        if sequence is not None:
            return sequence
    return node


def series_description(node: Any) -> str:
    """The node's DICOM series description as the study loader stored it (``CMR.SeriesDescription``,
    on the node or the sequence it is the proxy of), else its name."""
    from cmrlib.mrml import node_meta
    text = node_meta(series_node(node)).get("SeriesDescription")
    return str(text) if isinstance(text, str) and text.strip() else node.GetName() or ""


def series_kind(node: Any) -> str | None:
    """The series kind the study loader stored on ``node`` or on the sequence it is the proxy of
    (``lge_psir``, ``cine``, …); None without one."""
    from CMRCommonLib.study_loader import series_kind_of
    return series_kind_of(series_node(node)) or None


def is_lge_node(node: Any) -> bool:
    """Whether ``node`` is a scalar volume of short-axis LGE: by the study loader's kind, else (no
    kind) by a series description naming LGE or PSIR."""
    from cmrlib.quality.pipeline import LGE_KINDS
    if not _is_scalar_volume(node):
        return False
    kind = series_kind(node)
    if kind is not None:
        return kind in LGE_KINDS
    return bool(_LGE_DESCRIPTION.search(series_description(node)))


def check_lge_node(node: Any, force: bool = False) -> list[str]:
    """Notes on the input ``node`` (e.g. "not recognised as LGE"); InputError, in one line naming the
    kind, for a volume the study loader classified as cine, T1 map, IRW, VNE, a fit map, a colour
    display or 3-D LA LGE (unless ``force``), for no node and for a node that is no scalar volume."""
    from cmrlib.quality.pipeline import check_series_kind
    if node is None:
        raise InputError("choose the LGE stack (a short-axis LGE PSIR or magnitude volume loaded by the study loader)")
    if not _is_scalar_volume(node):
        raise InputError(f"'{node.GetName()}' is a {node.GetClassName()}; the LGE stack must be a scalar volume")
    kind = series_kind(node)
    if kind is None and is_lge_node(node):
        return []  # named LGE / PSIR: the worker notes the missing DICOM classification itself
    try:
        return check_series_kind(kind, "", series_description(node), force)
    except InputError as exc:
        raise InputError(str(exc).removesuffix(_CLI_FORCE_HINT)) from None


def lge_image(node: Any, force: bool = False) -> Any:
    """The :class:`cmrlib.Image` of the LGE volume node, checked (:func:`check_lge_node`); its
    description defaults to the node name."""
    from cmrlib.mrml import image_from_volume_node
    check_lge_node(node, force)
    image = image_from_volume_node(node)
    image.meta.setdefault("SeriesDescription", node.GetName())
    return image


def default_threshold() -> tuple[float, str]:
    """(threshold, where from) that `cmr quality certainty` uses without ``--threshold``: the
    installed certainty model's calibrated operating threshold, else 0.5."""
    from cmrlib.quality.pipeline import CERTAINTY_MODEL
    return calibrated_threshold(CERTAINTY_MODEL, "operating_threshold")


def calibrated_threshold(model: str, key: str) -> tuple[float, str]:
    """(the installed ``model``'s calibrated ``key``, where from), else (0.5, why not)."""
    from cmrlib.models.zoo import find_model, model_installed
    if model_installed(model):
        value = find_model(model).calibration.get(key)
        if value is not None:
            return float(value), f"{model} calibration"
    return FALLBACK_THRESHOLD, "no calibrated threshold installed"


def check_threshold(threshold: float | None) -> float | None:
    """``threshold`` as a float (None: the model's default); InputError outside :data:`THRESHOLD_RANGE`."""
    if threshold is None:
        return None
    value = float(threshold)
    lo, hi = THRESHOLD_RANGE
    if not lo - 1e-9 <= value <= hi + 1e-9:
        raise InputError(f"the operating threshold is a probability of low certainty from {lo:g} to {hi:g} "
                         f"(or the model default); got {value:g}")
    return value


def certainty_arguments(lge: Any, folder: str | Path, out_dir: str | Path, *, threshold: float | None = None,
                        all_slices: bool = False, hide_non_lv: bool = False, force: bool = False) -> list[str]:
    """Write the LGE volume node ``lge`` as ``folder/lge.nrrd`` and return the `cmr quality
    certainty` arguments (progress as CMR-PROGRESS lines; the panel adds the device,
    ``CMRCommonLib.runner.worker_command``); ``out_dir`` must lie outside ``folder``.

    ``threshold``: probability of low certainty that flags a slice (None: the model's calibrated
    one); ``all_slices``: assess slices outside the LV too; ``hide_non_lv``: the montage leaves
    them out; ``force``: classify a non-LGE volume anyway. Raises InputError, writing nothing,
    for a missing or wrong node, a non-LGE kind, a threshold outside 0.05–0.95 or ``out_dir``
    inside ``folder``.
    """
    from cmrlib.atomic import check_output_folder
    from cmrlib.io import write_image

    value = check_threshold(threshold)
    check_output_folder(folder, out_dir)  # `cmr quality` refuses an output inside its input's folder
    image = lge_image(lge, force)
    args = ["quality", "certainty", str(write_image(image, Path(folder) / LGE_INPUT)), "--out", str(out_dir)]
    if value is not None:
        args += ["--threshold", f"{value:g}"]
    if all_slices:
        args.append("--all-slices")
    if hide_non_lv:
        args.append("--hide-non-lv")
    if force:
        args.append("--force")
    return args + ["--progress-lines"]


# ---- the result --------------------------------------------------------------------------------
def is_non_lv(s: Mapping[str, Any]) -> bool:
    """A slice the slice-level network put outside the LV (too basal / too apical)."""
    return s.get("class") not in (None, "LV")


def slice_verdict(s: Mapping[str, Any]) -> str:
    """equivocal / clear at the result's threshold, or not assessed (outside the LV, or no certainty task)."""
    flag = s.get("flag")
    return EQUIVOCAL if flag else CLEAR if flag is False else NOT_ASSESSED


def slice_row(s: Mapping[str, Any]) -> dict[str, Any]:
    """One table row of a result.json slice: numbers as numbers (None where missing), texts as texts."""
    probs = s.get("probabilities") or {}
    p_low = s.get("p_low_certainty")
    return {"slice": int(s["index"]) + 1, "level": s.get("class") or "",
            **{col: (None if probs.get(c) is None else float(probs[c])) for col, c in zip(PROBABILITY_COLUMNS,
                                                                                           SLICE_CLASSES)},
            "p(low certainty)": None if p_low is None else float(p_low), "verdict": slice_verdict(s)}


def row_colour(s: Mapping[str, Any]) -> str | None:
    """The slice's colour (``#rrggbb``) in the montage's code — equivocal red, clear green, outside
    the LV grey — or None for a slice that is none of these."""
    from cmrlib.quality.outputs import COLOURS, slice_label
    colour = slice_label(dict(s))[1]
    return None if colour == COLOURS["none"] else colour


def _check_slices(slices: Any) -> list[dict[str, Any]]:
    if not isinstance(slices, list):
        raise InputError("the `cmr quality` result lacks result.json's slices")
    for k, s in enumerate(slices):
        if not isinstance(s, Mapping) or not isinstance(s.get("index"), int) or isinstance(s.get("index"), bool):
            raise InputError(f"result.json's slice {k + 1} has no slice index")
        probs = s.get("probabilities")
        if probs is not None and not (isinstance(probs, Mapping) and set(probs) == set(SLICE_CLASSES)):
            raise InputError(f"result.json's slice {k + 1}: probabilities must be of {', '.join(SLICE_CLASSES)}")
    return [dict(s) for s in slices]


@dataclass
class QualityOutputs:
    """Nodes made from one `cmr quality certainty` result: the per-slice ``table`` node; ``summary``
    is result.json, ``slices`` every slice of it (shown or not), ``montage`` the quality.png path
    (None when the folder has none), ``hide_non_lv`` whether the table leaves the slices outside
    the LV out."""

    table: Any
    summary: dict
    slices: list[dict]
    montage: Path | None
    hide_non_lv: bool = False

    def nodes(self) -> dict[str, Any]:
        return {"table": self.table}

    @property
    def sentence(self) -> str:
        """The stack's one-line verdict ("2 of 9 LV slices equivocal: …")."""
        return str(self.summary.get("sentence") or "")

    @property
    def shown_slices(self) -> list[dict]:
        """The slices in the table: all, or those inside the LV (and unclassified) when hiding."""
        return [s for s in self.slices if not (self.hide_non_lv and is_non_lv(s))]

    def rows(self) -> list[dict[str, Any]]:
        return [slice_row(s) for s in self.shown_slices]

    def set_hide_non_lv(self, hide: bool) -> None:
        """Show or leave out the slices outside the LV; the table node is refilled in place."""
        from cmrlib.mrml import table_node_from_rows
        self.hide_non_lv = bool(hide)
        table_node_from_rows(self.table.GetScene(), self.rows(), "", node=self.table)

    def table_cells(self) -> list[tuple[list[str], str | None, str]]:
        """Per shown slice: the texts of :data:`TABLE_COLUMNS` (numbers with 2 decimals, "—" where
        missing), the row colour (:func:`row_colour`) and a tooltip (the montage label, the reason)."""
        from cmrlib.quality.outputs import slice_label
        out = []
        for s, row in zip(self.shown_slices, self.rows(), strict=True):
            texts = [str(row["slice"]), row["level"] or "—"]
            texts += ["—" if row[c] is None else f"{row[c]:.2f}" for c in (*PROBABILITY_COLUMNS, "p(low certainty)")]
            texts.append(row["verdict"])
            tip = slice_label(s)[0].replace("\n", ", ") + (f"\n{s['reason']}" if s.get("reason") else "")
            out.append((texts, row_colour(s), tip))
        return out

    def summary_text(self) -> str:
        """Threshold, hidden slices, time, models; the notes on their own lines (the verdict is :attr:`sentence`)."""
        s = self.summary
        parts = []
        if s.get("threshold") is not None:
            parts.append(f"threshold p(low certainty) ≥ {float(s['threshold']):.2f}")
        hidden = len(self.slices) - len(self.shown_slices)
        if hidden:
            parts.append(f"{hidden} slice(s) outside the LV hidden")
        if s.get("seconds") is not None:
            parts.append(f"{float(s['seconds']):.2f} s ({float(s.get('ms_per_slice') or 0):.0f} ms per slice)")
        for m in s.get("models") or []:
            parts.append(f"{m.get('name')} v{m.get('version', '?')}" + (f" ({m['notice']})" if m.get("notice") else ""))
        return "; ".join(parts) + "".join(f"\n{n}" for n in s.get("notes") or [])


def outputs_to_nodes(scene: Any, outputs: Mapping[str, Any], name: str = "", *,
                     hide_non_lv: bool | None = None) -> QualityOutputs:
    """The quality adapter (``Capability.adapter``): the table node "<name> quality" from the dict
    that ``cmrlib.quality.outputs.read_result`` returns (``summary``: result.json, ``slices``: its
    per-slice list, ``montage``: quality.png's path). ``name`` defaults to the series, else "LGE";
    ``hide_non_lv`` (default: as the result was made, ``--hide-non-lv``) leaves the slices outside
    the LV out of the table. A broken result adds nothing."""
    from cmrlib.mrml import table_node_from_rows

    summary = outputs.get("summary")
    if not isinstance(summary, Mapping):
        raise InputError("the `cmr quality` result lacks result.json")
    slices = _check_slices(outputs.get("slices", summary.get("slices")))
    hide = bool(summary.get("hide_non_lv", False)) if hide_non_lv is None else bool(hide_non_lv)
    montage = Path(outputs["montage"]) if outputs.get("montage") else None
    out = QualityOutputs(None, dict(summary), slices, montage if montage is not None and montage.is_file() else None,
                         hide)
    rows = out.rows()  # before any node: a broken result adds nothing to the scene
    out.table = table_node_from_rows(scene, rows, f"{name or summary.get('series') or 'LGE'} quality")
    return out


def load_quality_results(scene: Any, folder: str | Path, name: str = "",
                         hide_non_lv: bool | None = None) -> QualityOutputs:
    """A `cmr quality certainty` output folder as nodes (:func:`outputs_to_nodes`)."""
    from cmrlib.quality.outputs import read_result
    folder = Path(folder)
    try:
        outputs = read_result(folder)
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder} holds no readable `cmr quality` result: {exc}") from None
    return outputs_to_nodes(scene, outputs, name, hide_non_lv=hide_non_lv)


def show_slice(scene: Any, volume: Any, index: int) -> int:
    """Turn every slice view of ``scene`` to the planes of ``volume`` and centre it on slice
    ``index`` (0-based) of that volume; returns how many views moved."""
    import numpy as np
    import vtk

    dims = volume.GetImageData().GetDimensions() if volume.GetImageData() is not None else (0, 0, 0)
    if not 0 <= int(index) < dims[2]:
        raise InputError(f"slice {int(index) + 1} is outside 1..{dims[2]} of '{volume.GetName()}'")
    m = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(m)
    ijk = np.array([(dims[0] - 1) / 2.0, (dims[1] - 1) / 2.0, float(index), 1.0])
    ras = [sum(m.GetElement(r, c) * ijk[c] for c in range(4)) for r in range(3)]
    moved = 0
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLSliceNode")
        node.RotateToVolumePlane(volume)
        node.JumpSliceByCentering(*ras)
        moved += 1
    return moved


# ---- watching the scene ----------------------------------------------------------------------------
class LGEArrivalWatcher:
    """Calls ``callback(node)`` once for each LGE scalar volume added to ``scene`` after it started
    (:func:`is_lge_node`: the study loader's kind, else a description naming LGE / PSIR).

    A node is often added before its image data and series attributes are set (the study loader,
    Slicer's volume readers): an added volume without image data, or without a kind and an LGE
    name yet, is observed (ModifiedEvent) until it has both, is found not to be LGE (it carries
    another kind) or leaves the scene. ``on_error(exc)`` (default: re-raise) receives what the
    callback raises, so that a failing callback never breaks the scene's event handling.
    :meth:`stop` removes every observer.
    """

    def __init__(self, scene: Any, callback: Callable[[Any], None],
                 on_error: Callable[[Exception], None] | None = None) -> None:
        import slicer
        import vtk

        self.scene = scene
        self.callback = callback
        self.on_error = on_error
        self._seen: set[str] = set()  # IDs of nodes already passed to the callback or found not to be LGE
        self._pending: dict[str, tuple[Any, int]] = {}  # ID → (node, its ModifiedEvent observer tag)

        @vtk.calldata_type(vtk.VTK_OBJECT)
        def added(_scene, _event, node):
            self._consider(node)

        @vtk.calldata_type(vtk.VTK_OBJECT)
        def removed(_scene, _event, node):
            self._forget(node)

        self._scene_tags = [scene.AddObserver(slicer.vtkMRMLScene.NodeAddedEvent, added),
                            scene.AddObserver(slicer.vtkMRMLScene.NodeRemovedEvent, removed)]

    @property
    def active(self) -> bool:
        return bool(self._scene_tags)

    @property
    def pending(self) -> list[Any]:
        """Added volumes still waiting for their image data or series attributes."""
        return [node for node, _ in self._pending.values()]

    def _consider(self, node: Any) -> None:
        if node is None or not _is_scalar_volume(node) or node.GetHideFromEditors():
            return
        node_id = node.GetID()
        if node_id in self._seen:
            return
        decided = self._decide(node)
        if decided is None:
            if node_id not in self._pending:
                tag = node.AddObserver("ModifiedEvent", lambda caller, _event: self._consider(caller))
                self._pending[node_id] = (node, tag)
            return
        self._seen.add(node_id)
        self._unobserve(node_id)
        if decided:
            try:
                self.callback(node)
            except Exception as exc:
                if self.on_error is None:
                    raise
                self.on_error(exc)

    @staticmethod
    def _decide(node: Any) -> bool | None:
        """True: an LGE volume ready to classify; False: not LGE (another kind); None: not yet known."""
        if node.GetImageData() is None:
            return None
        if is_lge_node(node):
            return True
        return False if series_kind(node) is not None else None

    def _unobserve(self, node_id: str) -> None:
        node, tag = self._pending.pop(node_id, (None, None))
        if node is not None:
            node.RemoveObserver(tag)

    def _forget(self, node: Any) -> None:
        if node is not None and node.GetID() in self._pending:
            self._unobserve(node.GetID())

    def stop(self) -> None:
        """Remove the scene's and the pending nodes' observers; the callback is not called again."""
        for tag in self._scene_tags:
            self.scene.RemoveObserver(tag)
        self._scene_tags = []
        for node_id in list(self._pending):
            self._unobserve(node_id)
