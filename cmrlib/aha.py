"""AHA 16/17-segment model of the left ventricle: segment maps, per-segment statistics and
the bull's-eye plot — the one home every capability uses (docs/methods/landmarks.md).

Conventions (AHA 2002 statement, Cerqueira et al., Circulation 2002;105:539-542, and the
method card):

* **Levels.** The LV is divided perpendicular to its long axis into basal, mid and apical
  thirds (:func:`slice_levels`); the apical cap beyond the cavity is segment 17 ("apex").
* **Reference.** The attachment of the RV wall to the LV separates the septum from the
  anterior and inferior free walls: the *anterior RV insertion point* is the boundary
  between anterior (1 / 7) and anteroseptal (2 / 8). Angles are measured about the LV
  centre, in mm (pixel spacing applied).
* **Order.** From the anterior insertion point the segments run *through the septum*:
  anteroseptal, inferoseptal, inferior, inferolateral, anterolateral, anterior (6 × 60°,
  basal and mid). Apical slices have 4 × 90° — anterior, septal, inferior, lateral — the
  septal segment centred 60° past the insertion point (the middle of the basal/mid
  septum), i.e. spanning 15°..105° past it. In the standard short-axis display (viewed
  from the apex: anterior up, RV and septum on the image left, lateral wall right) this
  order is **counter-clockwise**, as in the bull's-eye.
* **Handedness from geometry.** "Counter-clockwise viewed from the apex" is a positive
  (right-hand) rotation about the long axis pointing to the apex. Which way that turns on
  the pixel grid is decided from the image's LPS direction (``direction``, columns = col,
  row, slice axes), never from how the pixels happen to look: the in-plane normal
  ``col × row`` is compared with the direction the LV apex points in every (laevocardic)
  patient, left-anterior-inferior, LPS ``(1, -1, -1)/√3``. In the standard display
  ``col × row`` points to the base; a mirrored acquisition (left-right flipped pixels, the
  column axis reversed) has it pointing to the apex and gets the same anatomical segments.
  The slice axis (third column) is not used: stacks run base→apex or apex→base.
  Dextrocardia / situs inversus are not handled (the prior would be wrong).

Points are ``[column, row]`` pixels of the image (the ``landmarks.json`` convention),
masks are 2-D ``[row, col]`` (3-D ``[slice, row, col]`` for :func:`aha_volume`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import InputError
from .image import Image

SEGMENT_NAMES: dict[int, str] = {
    1: "basal anterior", 2: "basal anteroseptal", 3: "basal inferoseptal",
    4: "basal inferior", 5: "basal inferolateral", 6: "basal anterolateral",
    7: "mid anterior", 8: "mid anteroseptal", 9: "mid inferoseptal",
    10: "mid inferior", 11: "mid inferolateral", 12: "mid anterolateral",
    13: "apical anterior", 14: "apical septal", 15: "apical inferior", 16: "apical lateral",
    17: "apex",
}
LEVEL_SEGMENTS: dict[str, Sequence[int]] = {"basal": range(1, 7), "mid": range(7, 13), "apical": range(13, 17),
                                            "apex": (17,)}
LEVELS = tuple(LEVEL_SEGMENTS)

#: direction the LV apex points in a normal (laevocardic) patient, LPS: left, anterior, inferior
APEX_PRIOR_LPS = np.array([1.0, -1.0, -1.0]) / math.sqrt(3.0)
#: below this |cos| between the image normal and the apex prior the plane holds the long axis
#: (a long-axis view): apex and base cannot be told apart and the image is refused
MIN_NORMAL_COS = 0.25

# segment by 60° sector of the angle past the anterior insertion point (basal; +6 for mid)
_SIX = np.array([2, 3, 4, 5, 6, 1], np.int32)
# apical: sectors of 90° starting 15° past the insertion point (septal centred at 60°)
_FOUR = np.array([14, 15, 16, 13], np.int32)
_APICAL_START_DEG = 15.0


# ---- geometry ------------------------------------------------------------------------------
def display_sign(direction: np.ndarray | None) -> int:
    """+1 when the pixel grid shows the heart as the standard short-axis display (viewed from
    the apex when rows run down the screen), -1 when it is mirrored.

    ``direction``: the image's 3×3 LPS direction (columns = col, row, slice axes; see
    :class:`cmrlib.image.Image`); None assumes the standard display. +1 means ``col × row``
    points towards the base (away from the apex prior :data:`APEX_PRIOR_LPS`). An image
    whose plane holds the long-axis direction (``|cos| < MIN_NORMAL_COS``) raises
    :class:`~cmrlib.errors.InputError`.
    """
    if direction is None:
        return 1
    d = np.asarray(direction, float)
    if d.shape != (3, 3) or not np.all(np.isfinite(d)):
        raise InputError(f"direction must be a finite 3x3 LPS matrix (columns = col, row, slice axes); got shape {d.shape}")
    normal = np.cross(d[:, 0], d[:, 1])
    norm = float(np.linalg.norm(normal))
    if norm < 1e-6:
        raise InputError("direction has parallel column and row axes; cannot tell the in-plane orientation")
    cos = float(normal @ APEX_PRIOR_LPS) / norm
    if abs(cos) < MIN_NORMAL_COS:
        raise InputError(f"the image plane is not a short-axis plane: its normal is {math.degrees(math.acos(abs(cos))):.0f}° "
                         "from the LV long-axis direction (left-anterior-inferior); AHA segments need a short-axis image")
    return 1 if cos < 0 else -1


def _point(p: Sequence[float] | None, name: str, shape: tuple[int, int]) -> np.ndarray:
    if p is None:
        raise InputError(f"{name} is missing: AHA segments need the LV centre and the anterior RV insertion point")
    a = np.asarray(p, float).reshape(-1)
    if a.size != 2 or not np.all(np.isfinite(a)):
        raise InputError(f"{name} must be [column, row] pixels (2 finite numbers); got {p!r}")
    rows, cols = shape
    if not (-0.5 <= a[0] <= cols - 0.5 and -0.5 <= a[1] <= rows - 0.5):
        raise InputError(f"{name} [column, row] = [{a[0]:.1f}, {a[1]:.1f}] lies outside the image "
                         f"({cols} columns x {rows} rows)")
    return a


def _mask2d(myocardium: np.ndarray) -> np.ndarray:
    m = np.asarray(myocardium)
    if m.ndim != 2:
        raise InputError(f"the myocardium mask must be 2-D [row, col]; got shape {m.shape}")
    if m.dtype != bool:
        values = np.unique(m)
        if not np.all(np.isin(values, (0, 1))):
            raise InputError("the myocardium mask must be boolean (or 0/1); got values "
                             f"{values[:6].tolist()}: pass e.g. (labels == 1) | (labels == 3) for a label map")
        m = m.astype(bool)
    if not m.any():
        raise InputError("the myocardium mask has no myocardium pixels: no AHA segments in this slice")
    return m


def _spacing2(spacing: Sequence[float] | None) -> tuple[float, float]:
    if spacing is None:
        return 1.0, 1.0
    s = [float(v) for v in spacing][:2]
    if len(s) != 2 or min(s) <= 0 or not all(map(math.isfinite, s)):
        raise InputError(f"spacing must be (column mm, row mm), positive; got {spacing!r}")
    return s[0], s[1]


def anatomical_angles(cols: np.ndarray, rows: np.ndarray, centre_px: np.ndarray, sign: int,
                      spacing: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Angle (deg, 0..360) of pixels about ``centre_px`` ([column, row]), counter-clockwise as
    viewed from the apex (positive about the apex-pointing long axis), zero along the column
    axis; ``sign`` from :func:`display_sign`. Only differences of these angles are anatomical."""
    dc = (np.asarray(cols, float) - centre_px[0]) * spacing[0]
    dr = (np.asarray(rows, float) - centre_px[1]) * spacing[1]
    return np.mod(np.degrees(np.arctan2(-sign * dr, dc)), 360.0)


def _check_level(level: str) -> str:
    if level not in LEVEL_SEGMENTS:
        raise InputError(f"unknown AHA level {level!r}; expected one of {', '.join(LEVELS)}")
    return level


def segment_of_angle(rel_deg: np.ndarray | float, level: str) -> np.ndarray:
    """AHA segment number for angles (deg) measured past the anterior RV insertion point
    through the septum (counter-clockwise viewed from the apex), at ``level``."""
    _check_level(level)
    rel = np.mod(np.asarray(rel_deg, float), 360.0)
    if level == "apex":
        return np.full(rel.shape, 17, np.int32)
    if level == "apical":
        return _FOUR[(np.mod(rel - _APICAL_START_DEG, 360.0) // 90).astype(int) % 4]  # % 4: a float 360.0 is 0
    six = _SIX[(rel // 60).astype(int) % 6]
    return six + (6 if level == "mid" else 0)


# ---- segments ------------------------------------------------------------------------------
def aha_segments(myocardium: np.ndarray, lv_centre_px: Sequence[float], rv_insertion_px: Sequence[float],
                 level: str, *, direction: np.ndarray | None = None,
                 spacing: Sequence[float] | None = None) -> np.ndarray:
    """AHA segment label map (int32 ``[row, col]``; 0 outside the myocardium) of one slice.

    ``myocardium``: 2-D boolean mask ``[row, col]`` (scar included). ``lv_centre_px`` and
    ``rv_insertion_px`` (the anterior RV insertion point): ``[column, row]`` pixels.
    ``level``: "basal" (1–6), "mid" (7–12), "apical" (13–16) or "apex" (17 everywhere).
    Basal / mid: 6 × 60° starting at the insertion point through the septum; apical:
    4 × 90° with the septal segment centred 60° past the insertion point. ``direction``:
    the image's 3×3 LPS direction, which decides the rotation sense (module docstring); None
    assumes the standard display. ``spacing``: (column, row) pixel size in mm so that
    angles are physical (default isotropic).

    At the "apex" level the points may be None (the cap has no angular reference).

    Raises :class:`~cmrlib.errors.InputError` for an empty mask, points outside the image,
    an unknown level, or an insertion point on the centre.
    """
    _check_level(level)
    m = _mask2d(myocardium)
    if level == "apex":  # the apical cap is one segment: no angular reference needed
        for name, p in (("lv_centre_px", lv_centre_px), ("rv_insertion_px", rv_insertion_px)):
            if p is not None:
                _point(p, name, m.shape)
        display_sign(direction)
        return m.astype(np.int32) * 17
    centre = _point(lv_centre_px, "lv_centre_px", m.shape)
    ins = _point(rv_insertion_px, "rv_insertion_px", m.shape)
    sc, sr = _spacing2(spacing)
    if math.hypot((ins[0] - centre[0]) * sc, (ins[1] - centre[1]) * sr) < 1e-3 * max(sc, sr):
        raise InputError(f"the RV insertion point {ins.tolist()} coincides with the LV centre: no angular reference")
    sign = display_sign(direction)
    out = np.zeros(m.shape, np.int32)
    rows, cols = np.nonzero(m)
    ang = anatomical_angles(cols, rows, centre, sign, (sc, sr))
    ref = float(anatomical_angles(np.array([ins[0]]), np.array([ins[1]]), centre, sign, (sc, sr))[0])
    out[rows, cols] = segment_of_angle(ang - ref, level)
    return out


def aha_volume(myocardium: np.ndarray, lv_centres: Sequence[Sequence[float] | None],
               rv_insertions: Sequence[Sequence[float] | None], levels: Sequence[str | None], *,
               direction: np.ndarray | None = None, spacing: Sequence[float] | None = None,
               skipped: list[dict] | None = None) -> np.ndarray:
    """AHA label map ``[slice, row, col]`` of a stack, slice by slice (:func:`aha_segments`).

    ``lv_centres`` / ``rv_insertions``: per slice ``[column, row]`` pixels or None;
    ``levels``: per slice a level name (:func:`slice_levels`) or None. A slice with no
    landmarks (an "apex" slice needs none), no level or no myocardium gets 0 everywhere
    and is reported: when
    ``skipped`` is a list, ``{"index": k, "reason": "..."}`` is appended for it. Other bad
    input (points outside the image, an unknown level) still raises.
    """
    m = np.asarray(myocardium)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise InputError(f"the myocardium mask must be 3-D [slice, row, col]; got shape {m.shape}")
    n = m.shape[0]
    for name, seq in (("lv_centres", lv_centres), ("rv_insertions", rv_insertions), ("levels", levels)):
        if len(seq) != n:
            raise InputError(f"{name} has {len(seq)} entries for {n} slices")
    display_sign(direction)  # refuse a long-axis geometry once, before any slice
    out = np.zeros(m.shape, np.int32)
    for k in range(n):
        reason = None
        if levels[k] is None:
            reason = "no AHA level for this slice"
        elif not np.any(m[k]):
            reason = "no myocardium in this slice"
        elif levels[k] != "apex" and (lv_centres[k] is None or rv_insertions[k] is None):
            reason = "no landmarks (LV centre / RV insertion point) for this slice"
        if reason is not None:
            if skipped is not None:
                skipped.append({"index": k, "reason": reason})
            continue
        out[k] = aha_segments(m[k], lv_centres[k], rv_insertions[k], levels[k], direction=direction, spacing=spacing)
    return out


def long_axis_positions(image: Image) -> list[float]:
    """Position (mm) of each slice of ``image`` along the long axis, increasing towards the
    apex: the slice centres' LPS positions projected on the plane normal turned to point to
    the apex (:func:`display_sign`), ready for :func:`slice_levels`. Works across series
    (T1 maps acquired one slice a series): positions share the patient's LPS origin."""
    d = np.asarray(image.direction, float)
    sign = display_sign(d)
    normal = np.cross(d[:, 0], d[:, 1])
    apexward = -sign * normal / np.linalg.norm(normal)
    n_slices = image.spatial_shape[0]
    origin = np.asarray(image.origin, float)
    return [float((origin + k * image.spacing[2] * d[:, 2]) @ apexward) for k in range(n_slices)]


def slice_levels(positions_mm: Sequence[float], base_mm: float | None = None,
                 apex_mm: float | None = None, *, cap: Sequence[bool] | None = None) -> list[str]:
    """AHA level ("basal" / "mid" / "apical", "apex" for the apical cap) of each slice.

    ``positions_mm``: positions along the long axis (mm) of the slices that hold LV
    myocardium (:func:`long_axis_positions`). The LV extent from ``base_mm`` to ``apex_mm``
    is cut into thirds; either direction of the axis works when both are given. Defaults:
    positions increase towards the apex; ``base_mm`` = the lowest position and ``apex_mm``
    = the highest, each widened by half the median slice spacing (every slice covers its own
    thickness), so equally spaced stacks split by slice count (9 slices → 3 / 3 / 3,
    10 → 3 / 4 / 3). ``cap``: per slice True where the slice is the apical cap (myocardium
    but no LV cavity): such a slice is "apex" (segment 17) and the default extent is that of
    the other slices (thirds of the cavity's length, as in the AHA model). A position past
    an explicit ``apex_mm`` is "apex" too; one before ``base_mm`` counts as "basal".
    """
    p = np.asarray(positions_mm, float).reshape(-1)
    if p.size == 0:
        raise InputError("slice_levels needs at least one slice position (mm)")
    if not np.all(np.isfinite(p)):
        raise InputError(f"slice positions must be finite numbers (mm); got {list(positions_mm)!r}")
    is_cap = np.zeros(p.size, bool) if cap is None else np.asarray(cap, bool).reshape(-1)
    if is_cap.size != p.size:
        raise InputError(f"cap has {is_cap.size} entries for {p.size} slice positions")
    body = p[~is_cap]
    if body.size == 0:
        return ["apex"] * p.size
    half = 0.5 * float(np.median(np.diff(np.sort(body)))) if body.size > 1 else 0.0
    base = float(base_mm) if base_mm is not None else float(body.min()) - half
    apex = float(apex_mm) if apex_mm is not None else float(body.max()) + half
    if abs(apex - base) < 1e-6:
        raise InputError(f"the LV extent is empty (base {base:.1f} mm, apex {apex:.1f} mm): "
                         "give base_mm and apex_mm, or positions of more than one slice")
    t = (p - base) / (apex - base)
    eps = 1e-9
    return ["apex" if c else "basal" if v < 1 / 3 - eps else "mid" if v < 2 / 3 - eps else "apical" if v <= 1 + eps
            else "apex" for v, c in zip(t, is_cap)]


# ---- statistics ----------------------------------------------------------------------------
def segment_stats(values: np.ndarray, segments: np.ndarray, valid: np.ndarray | None = None) -> list[dict]:
    """Statistics of ``values`` per AHA segment present in ``segments`` (same shape).

    One row per segment present (ascending): ``segment``, ``name``, ``mean``, ``sd``
    (sample SD, n - 1), ``median`` (in the units of ``values``) and ``n_pixels`` (pixels
    used). ``valid`` (optional boolean mask, same shape) and non-finite values exclude
    pixels; a segment whose pixels are all excluded keeps its row with ``n_pixels`` 0 and
    None statistics (``sd`` is None also for a single pixel).
    """
    v = np.asarray(values, float)
    s = np.asarray(segments)
    if v.shape != s.shape:
        raise InputError(f"values {v.shape} and segments {s.shape} must have the same shape")
    ok = np.isfinite(v)
    if valid is not None:
        va = np.asarray(valid)
        if va.shape != s.shape:
            raise InputError(f"valid {va.shape} must have the shape of segments {s.shape}")
        ok &= va.astype(bool)
    rows = []
    for seg in sorted(int(x) for x in np.unique(s) if int(x) > 0):
        if seg not in SEGMENT_NAMES:
            raise InputError(f"segments holds {seg}, not an AHA segment (1..17)")
        x = v[(s == seg) & ok]
        n = int(x.size)
        rows.append({"segment": seg, "name": SEGMENT_NAMES[seg],
                     "mean": float(np.mean(x)) if n else None,
                     "sd": float(np.std(x, ddof=1)) if n > 1 else None,
                     "median": float(np.median(x)) if n else None,
                     "n_pixels": n})
    return rows


# ---- bull's-eye ----------------------------------------------------------------------------
#: bull's-eye centre angle (deg, counter-clockwise from 3 o'clock on the page) of each segment:
#: anterior at the top, septum on the left (the standard AHA polar map, viewed from the apex)
BULLSEYE_CENTRE_DEG: dict[int, float] = {
    **{k: (90.0 + 60.0 * ((k - 1) % 6)) % 360.0 for k in range(1, 13)},
    13: 90.0, 14: 180.0, 15: 270.0, 16: 0.0,
}
BULLSEYE_SIZE_PX = (600, 500)  # width, height of the PNG
_DPI = 100


def bullseye(values: Mapping[int, float | None], path: str | Path, *, title: str = "", unit: str = "",
             vmin: float | None = None, vmax: float | None = None, cmap: str = "jet",
             label_fmt: str = ".0f", bounds: Sequence[float] | None = None) -> Path:
    """Write an AHA bull's-eye PNG (:data:`BULLSEYE_SIZE_PX`, matplotlib Agg) and return its path.

    ``values``: segment number → value (units ``unit``); missing segments, None or NaN are
    drawn grey. Rings from outside: basal (1–6), mid (7–12), apical (13–16), and segment 17
    in the centre when ``values`` has key 17 (17-segment model; otherwise the 16-segment
    model). Standard orientation: anterior at the top, septum on the left. Each segment
    shows its number and its value (``format(value, label_fmt)``); a colour bar is labelled
    with ``unit``. ``vmin`` / ``vmax`` default to the range of the values given. ``bounds``
    (ascending) draws discrete colour bands instead, e.g. dT1's 3 / 6 / 9 % thresholds; values
    outside them take the end colours (the bar shows arrows).
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Wedge

    vals: dict[int, float] = {}
    for k, v in dict(values).items():
        k = int(k)
        if k not in SEGMENT_NAMES:
            raise InputError(f"bull's-eye values have segment {k}; AHA segments are 1..17")
        if v is not None and np.isfinite(float(v)):
            vals[k] = float(v)
    with_17 = 17 in dict(values)
    finite = list(vals.values())
    lo = float(vmin) if vmin is not None else (min(finite) if finite else 0.0)
    hi = float(vmax) if vmax is not None else (max(finite) if finite else 1.0)
    if hi <= lo:
        hi = lo + 1.0
    try:
        cm = colormaps[cmap]
    except KeyError:
        raise InputError(f"unknown matplotlib colour map {cmap!r}") from None
    norm = Normalize(lo, hi)
    if bounds is not None:
        from matplotlib.colors import BoundaryNorm
        edges = [float(b) for b in bounds]
        if len(edges) < 2 or any(a >= b for a, b in zip(edges, edges[1:])):
            raise InputError(f"bull's-eye bounds must be at least two ascending values; got {bounds}")
        norm = BoundaryNorm(edges, cm.N, extend="both")

    w, h = BULLSEYE_SIZE_PX
    fig = Figure(figsize=(w / _DPI, h / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.04, 0.74, 0.86))
    ax.set_aspect("equal")
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_axis_off()
    radii = {"basal": (0.75, 1.0), "mid": (0.5, 0.75), "apical": (0.25 if with_17 else 0.0, 0.5)}
    grey = (0.78, 0.78, 0.78, 1.0)

    def text(x: float, y: float, seg: int) -> None:
        v = vals.get(seg)
        label = f"{seg}\n{format(v, label_fmt)}" if v is not None else f"{seg}\n–"
        rgba = cm(norm(v)) if v is not None else grey
        dark = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5
        ax.text(x, y, label, ha="center", va="center", fontsize=8, color="white" if dark else "black", linespacing=1.1)

    for level, (r0, r1) in radii.items():
        span = 90.0 if level == "apical" else 60.0
        for seg in LEVEL_SEGMENTS[level]:
            c = BULLSEYE_CENTRE_DEG[seg]
            colour = cm(norm(vals[seg])) if seg in vals else grey
            ax.add_patch(Wedge((0, 0), r1, c - span / 2, c + span / 2, width=r1 - r0, facecolor=colour,
                               edgecolor="black", linewidth=1.0))
            rm = 0.5 * (r0 + r1) if r0 > 0 else 0.3
            text(rm * math.cos(math.radians(c)), rm * math.sin(math.radians(c)), seg)
    if with_17:
        ax.add_patch(Circle((0, 0), 0.25, facecolor=cm(norm(vals[17])) if 17 in vals else grey, edgecolor="black",
                            linewidth=1.0))
        text(0.0, 0.0, 17)
    for label, (x, y), kw in (("anterior", (0, 1.04), {"va": "bottom"}), ("inferior", (0, -1.04), {"va": "top"}),
                              ("septal", (-1.04, 0), {"ha": "right", "rotation": 90}),
                              ("lateral", (1.04, 0), {"ha": "left", "rotation": 270})):
        ax.text(x, y, label, ha=kw.pop("ha", "center"), va=kw.pop("va", "center"), fontsize=8, color="0.3", **kw)
    cax = fig.add_axes((0.80, 0.12, 0.035, 0.7))
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cm), cax=cax,
                       **({"ticks": list(bounds), "extend": "both"} if bounds is not None else {}))
    bar.set_label(unit)
    if title:
        fig.suptitle(title, fontsize=11)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, format="png")
    return path


__all__ = ["SEGMENT_NAMES", "LEVEL_SEGMENTS", "LEVELS", "APEX_PRIOR_LPS", "BULLSEYE_CENTRE_DEG", "BULLSEYE_SIZE_PX",
           "display_sign", "anatomical_angles", "long_axis_positions", "segment_of_angle", "aha_segments", "aha_volume", "slice_levels",
           "segment_stats", "bullseye"]
