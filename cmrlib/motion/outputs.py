"""CMRMotion's output folder: file names, the writer and reader shared by the CLI, `cmr run` and
the Slicer adapter, the figures, and the capability's section of ``report.html``.

One folder per IRW series (see ``CAPABILITY.outputs`` in :mod:`cmrlib.motion.capability`)::

    t1_map.nrrd  r2_map.nrrd  [r2_map_before.nrrd]  corrected.nrrd  dvf.nrrd  result.json
    t1_map.png   [r2_before_after.png]
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..contract import Figure, Finding, ReportSection
from ..image import Image
from ..io import read_image, write_displacement_sequence, write_image

T1_MAP, R2_MAP, R2_BEFORE, CORRECTED, DVF, RESULT = (
    "t1_map.nrrd", "r2_map.nrrd", "r2_map_before.nrrd", "corrected.nrrd", "dvf.nrrd", "result.json")
T1_PNG, R2_PNG = "t1_map.png", "r2_before_after.png"
NATIVE_WINDOW_MS = (0.0, 2000.0)  # the usual display window of native T1 maps
POST_WINDOW_MS = (0.0, 1000.0)  # post-contrast maps (median T1 under 700 ms)
R2_WINDOW = (0.8, 1.0)


def t1_window_ms(t1: np.ndarray, valid: np.ndarray | None = None, myocardium_ms: float | None = None) -> tuple[float, float]:
    """Display window (ms): 0–2000 for native maps, 0–1000 when the map is post-contrast.

    Post-contrast when the myocardial T1 is under 700 ms, or — without a myocardium mask —
    when even the longest T1 in the field (95th percentile: blood, fluid; native ≥ 1400 ms at
    1.5 and 3 T, post-contrast ≈ 300–600 ms) is under 1000 ms.
    """
    if myocardium_ms is not None:
        return POST_WINDOW_MS if myocardium_ms < 700.0 else NATIVE_WINDOW_MS
    values = t1[valid] if valid is not None and valid.any() else t1[t1 > 0]
    return POST_WINDOW_MS if values.size and float(np.percentile(values, 95)) < 1000.0 else NATIVE_WINDOW_MS


def write_result(result, out: Path) -> dict[str, Any]:
    """Write a :class:`~cmrlib.motion.pipeline.MotionResult` into ``out``; return result.json's dict."""
    from ..warp import dvf_to_lps_mm
    out.mkdir(parents=True, exist_ok=True)
    write_image(result.t1, out / T1_MAP)
    write_image(result.r2, out / R2_MAP)
    if result.r2_before is not None:
        write_image(result.r2_before, out / R2_BEFORE)
    write_image(result.corrected, out / CORRECTED)
    dvf = result.dvf if result.dvf.ndim == 5 else result.dvf[:, None]  # [frame, slice, 2, row, col]
    write_displacement_sequence(dvf_to_lps_mm(dvf, result.t1.spacing, result.t1.direction), result.t1,
                                out / DVF, result.corrected.frame_meta)
    summary = result.to_dict()
    summary["figures"] = write_figures(result.t1, result.r2, result.r2_before, result.valid, out,
                                       title=result.t1.meta.get("SeriesDescription", ""),
                                       myocardium_ms=result.t1_myocardium_ms)
    (out / RESULT).write_text(json.dumps(summary, indent=2))
    return summary


def write_example(folder: Path) -> None:
    """A small real result (a 40² still phantom ShMOLLI set, fit with motion correction off)
    written by :func:`write_result`: what the contract test reads back."""
    from ..phantom import Phantom, PhantomOptions, sample_subject
    from .pipeline import correct_and_map
    series = Phantom(sample_subject(3, PhantomOptions(matrix=40, la=False, clean=True))).irw(
        "mid", "native", "ShMOLLI", motion_severity=0.0)
    result = correct_and_map(series.image, "none", mask=series.labels.array[0] == 1)
    write_result(result, Path(folder))


def read_result(folder: str | Path) -> dict[str, Any]:
    """A motion output folder back as images: ``t1``, ``r2``, ``r2_before`` (or None),
    ``corrected`` (sequence), ``dvf`` (``[frame, slice, row, col, 3]`` LPS mm), ``dvf_grid``
    (the DVF's spatial grid) and ``summary`` (result.json)."""
    import SimpleITK as sitk
    folder = Path(folder)
    summary = json.loads((folder / RESULT).read_text())
    t1 = read_image(folder / T1_MAP)
    field = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / DVF)))
    if field.ndim == 4:  # one slice stored as [frame, row, col, 3]
        field = field[:, None]
    return {
        "t1": t1, "r2": read_image(folder / R2_MAP),
        "r2_before": read_image(folder / R2_BEFORE) if (folder / R2_BEFORE).is_file() else None,
        "corrected": read_image(folder / CORRECTED), "dvf": field,
        "dvf_grid": Image(np.zeros(t1.spatial_shape, np.float32), t1.spacing, t1.origin, t1.direction),
        "summary": summary,
    }


def write_figures(t1: Image, r2: Image, r2_before: Image | None, valid: np.ndarray, out: Path,
                  title: str = "", myocardium_ms: float | None = None) -> list[str]:
    """``t1_map.png`` (T1 with a colour bar, ms; pixels without a valid fit black) and
    ``r2_before_after.png``; returns the file names written."""
    # a Figure on the Agg canvas, never pyplot: no global backend switch (matters inside Slicer)
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t1_arr = np.asarray(t1.array, np.float32).reshape(t1.spatial_shape)
    ok = np.asarray(valid).reshape(t1.spatial_shape)
    low, high = t1_window_ms(t1_arr, ok, myocardium_ms)
    n = t1_arr.shape[0]
    cmap = colormaps["jet"].with_extremes(bad="black")
    fig = Figure(figsize=(4.2 * n + 0.8, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)
    for k, ax in enumerate(axes[0]):
        im = ax.imshow(np.ma.masked_where(~ok[k], t1_arr[k]), cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"{title} slice {k + 1}" if n > 1 else title, fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85, label="T1 (ms)")
    fig.savefig(out / T1_PNG, dpi=100, bbox_inches="tight")
    written = [T1_PNG]
    if r2_before is not None:
        after = np.asarray(r2.array).reshape(r2.spatial_shape)
        before = np.asarray(r2_before.array).reshape(r2.spatial_shape)
        fig = Figure(figsize=(8.6, 4.0 * n))
        FigureCanvasAgg(fig)
        axes = fig.subplots(n, 2, squeeze=False)
        for k in range(n):
            for ax, arr, label in ((axes[k, 0], before, "R² before correction"), (axes[k, 1], after, "R² after correction")):
                im = ax.imshow(arr[k], cmap="gray", vmin=R2_WINDOW[0], vmax=R2_WINDOW[1], interpolation="nearest")
                ax.set_axis_off()
                ax.set_title(label, fontsize=9)
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.85, label="R²")
        fig.savefig(out / R2_PNG, dpi=100, bbox_inches="tight")
        written.append(R2_PNG)
    return written


def report_section(step: dict[str, Any], study_out: Path) -> ReportSection:
    """CMRMotion's part of ``report.html``: myocardial T1 and R² per IRW series, then the maps."""
    section = ReportSection("T1 mapping (CMRMotion)")
    for r in step.get("series", []):
        name = r.get("series", "IRW series")
        method = r.get("method", "")
        section.findings.append(Finding(f"{name}: myocardial T1", r.get("t1_myocardium_ms"), "ms",
                                        "" if r.get("t1_myocardium_ms") is not None else "no myocardium mask",
                                        fmt=".0f"))
        section.findings.append(Finding(f"{name}: mean myocardial R²", r.get("r2_myocardium_mean"), "",
                                        f"after {method} motion correction" if method != "none" else "no motion correction",
                                        fmt=".3f"))
        if r.get("heart_rate_bpm") is not None:
            section.findings.append(Finding(f"{name}: heart rate", r["heart_rate_bpm"], "bpm",
                                            r.get("rr_source", ""), fmt=".0f"))
        cond = r.get("conditional_reconstruction")
        if cond:
            used = cond.get("pixels_by_samples", {})
            section.findings.append(Finding(f"{name}: ShMOLLI samples per pixel",
                                            ", ".join(f"{k}: {v}" for k, v in sorted(used.items())), "",
                                            "all 7 forced" if cond.get("forced_all_samples") else
                                            f"conditional reconstruction, R-R {cond.get('rr_ms', 0):.0f} ms"))
        for m in r.get("scanner_t1_maps", []):
            if m.get("median_difference_ms") is not None:
                section.findings.append(Finding(f"{name}: median difference from the scanner map {m['series']!r}",
                                                m["median_difference_ms"], "ms",
                                                f"{m['median_difference_percent']:+.1f} % in the {m['region']}, "
                                                f"{m['pixels']} pixels" + (" (resampled)" if m["resampled"] else ""),
                                                fmt="+.0f"))
        if r.get("r2_myocardium_mean_before_correction") is not None:
            section.findings.append(Finding(f"{name}: mean myocardial R² before correction",
                                            r["r2_myocardium_mean_before_correction"], "", fmt=".3f"))
        for fig in r.get("figures", []):  # r["out"] is relative to the study's output root
            caption = "T1 map (ms)" if fig == T1_PNG else "R² before / after motion correction"
            section.figures.append(Figure(str(Path(r["out"]) / fig), f"{name}: {caption}"))
        section.notes.extend(f"{name}: warning: {w}" for w in r.get("warnings", []))
        section.notes.extend(f"{name}: {note}" for note in r.get("notes", []))
    return section
