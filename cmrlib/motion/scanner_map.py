"""Our T1 map beside the scanner's own T1 map of the same slice (vendor inline maps).

:func:`scanner_maps_for` finds, in a scanned study, the T1-map series (classifier kind
``t1map``; colour displays and fit-parameter maps are other kinds) whose plane is the IRW
slice's; :func:`compare_with_scanner_map` resamples such a map onto our grid when the grids
differ (said so) and reports the median difference, in the myocardium when a mask is given,
else in the region where both maps hold a value.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ..image import Image


def same_plane(a: Image, b: Image, tol_fraction: float = 0.5) -> bool:
    """True when ``b``'s first slice lies in ``a``'s first slice plane (parallel, within half a slice)."""
    na, nb = a.direction[:, 2], b.direction[:, 2]
    if abs(float(np.dot(na, nb))) < 0.999:
        return False
    thickness = float(a.meta.get("SliceThickness") or a.spacing[2] or 8.0)
    return abs(float(np.dot(np.asarray(b.origin) - np.asarray(a.origin), na))) <= tol_fraction * thickness


def scanner_maps_for(scan, irw_image: Image, irw_series=None) -> list[tuple[Any, Image]]:
    """(SeriesInfo, loaded map Image) of every scanner T1 map of the IRW slice's plane in ``scan``."""
    from ..io import load_series
    out = []
    study = getattr(irw_series, "study_uid", None) or irw_image.meta.get("StudyInstanceUID")
    for s in scan.of_kind("t1map"):
        if study and s.study_uid and s.study_uid != study:
            continue
        if s.problems:
            continue
        try:
            img = load_series(s)
        except Exception:  # a map we cannot read is simply not compared
            continue
        if img.is_sequence:
            continue
        if same_plane(irw_image, img):
            out.append((s, img))
    return paired_maps(irw_series, out)


def _norm(text: str) -> str:
    return "".join(ch for ch in (text or "").lower() if ch.isalnum())


def paired_maps(irw_series, candidates: list[tuple[Any, Image]]) -> list[tuple[Any, Image]]:
    """The scanner map(s) made from this IRW series among same-plane ``candidates``.

    A stress and a rest acquisition of the same slice share the plane but not the map: the
    scanner names its map after the IRW series ("ShMOLLI_192i" → "ShMOLLI_192i_T1MAP"), so a
    map whose description starts with the IRW description is taken; otherwise the map
    numbered next after the IRW series (vendors number the map from it); otherwise all.
    """
    if irw_series is None or len(candidates) <= 1:
        return candidates
    own = _norm(getattr(irw_series, "description", ""))
    named = [c for c in candidates if own and _norm(c[0].description).startswith(own)]
    if named:
        return named
    number = getattr(irw_series, "series_number", None)
    after = [c for c in candidates if number is not None and (c[0].series_number or -1) > number]
    if after:
        nearest = min(c[0].series_number for c in after)
        return [c for c in after if c[0].series_number == nearest]
    return candidates


def resample_to(source: Image, grid: Image) -> tuple[np.ndarray, bool]:
    """``source``'s values at the pixel centres of ``grid``'s first slice (bilinear in-plane, nearest
    slice within half a slice thickness, 0 outside); and whether resampling was needed."""
    src = np.asarray(source.array, np.float32).reshape(source.spatial_shape)
    if source.same_geometry(grid, tol_mm=1e-3):
        return src.reshape(grid.spatial_shape), False
    rows, cols = grid.spatial_shape[1:]
    jj, ii = np.meshgrid(np.arange(cols), np.arange(rows))
    idx = np.stack([jj.ravel(), ii.ravel(), np.zeros(jj.size)], axis=1).astype(float)  # (col, row, slice)
    lps = grid.index_to_lps(idx)
    cont = source.lps_to_index(lps)
    k = np.rint(cont[:, 2]).astype(int)
    inside = (np.abs(cont[:, 2] - k) <= 0.5 + 1e-6) & (k >= 0) & (k < src.shape[0])
    values = np.zeros(jj.size, np.float32)
    for kk in np.unique(k[inside]):
        sel = inside & (k == kk)
        values[sel] = ndimage.map_coordinates(src[kk], [cont[sel, 1], cont[sel, 0]], order=1, mode="constant",
                                              cval=0.0)
    out = np.zeros(grid.spatial_shape, np.float32)
    out[0] = values.reshape(rows, cols)
    return out, True


def compare_with_scanner_map(t1: Image, valid: np.ndarray, scanner: Image, *, mask: np.ndarray | None = None,
                             series=None) -> dict[str, Any]:
    """Median difference (ms and %) of our T1 map from the scanner's, with the region and notes.

    Region: our valid pixels where the scanner map is > 0, inside ``mask`` (myocardium) when given.
    """
    theirs, resampled = resample_to(scanner, t1)
    ours = np.asarray(t1.array, np.float32).reshape(t1.spatial_shape)
    region = np.asarray(valid).reshape(t1.spatial_shape) & (theirs > 0)
    where = "myocardium" if mask is not None else "valid region of both maps (no myocardium mask)"
    if mask is not None:
        region &= np.asarray(mask).reshape(t1.spatial_shape).astype(bool)
    info: dict[str, Any] = {
        "series": getattr(series, "description", None) or scanner.meta.get("SeriesDescription", ""),
        "series_number": getattr(series, "series_number", None) or scanner.meta.get("SeriesNumber"),
        "region": where, "pixels": int(region.sum()), "resampled": resampled, "notes": []}
    if resampled:
        info["notes"].append(f"the scanner map ({'x'.join(map(str, scanner.spatial_shape[1:]))}, "
                             f"{scanner.spacing[0]:.3g} mm) is on a different grid from the IRW frames "
                             f"({'x'.join(map(str, t1.spatial_shape[1:]))}, {t1.spacing[0]:.3g} mm): resampled "
                             "bilinearly onto ours")
    if scanner.meta.get("rescale"):
        info["notes"].append(f"scanner map: {scanner.meta['rescale']}")
    if not region.any():
        info.update(median_difference_ms=None, median_difference_percent=None,
                    scanner_median_ms=None, ours_median_ms=None)
        info["notes"].append(f"no pixel to compare in the {where}")
        return info
    diff = ours[region] - theirs[region]
    info.update(median_difference_ms=float(np.median(diff)),
                median_difference_percent=float(100.0 * np.median(diff / theirs[region])),
                scanner_median_ms=float(np.median(theirs[region])), ours_median_ms=float(np.median(ours[region])))
    return info

