"""`cmr motion`: T1 / R² maps of an IRW series with MOCOnet, classical or no motion correction."""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..image import Image
from ..io import DicomScan, SeriesInfo, load_series, read_image, scan_folder, write_displacement_sequence, write_image
from ..io.files import SUFFIXES
from ..progress import ProgressCallback
from . import METHODS

MYOCARDIUM_LABEL = 1  # SlicerCMR label table: 1 myocardium


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="folder holding one IRW series, a study folder, or an IRW sequence "
                                       "file (.nrrd/.mha with InversionTime per frame, as `cmr run` writes) (read only)")
    parser.add_argument("--out", required=True, help="output folder (outside the input)")
    parser.add_argument("--method", choices=METHODS, default=None,
                        help="motion correction before fitting: moconet (phantom-trained weights), classical or none "
                             "(default: moconet when its weights are installed, else classical)")
    parser.add_argument("--mask", help="myocardium mask (NRRD/NIfTI) for the myocardial T1 / R² summary; "
                                       "label --mask-label, or any non-zero voxel of a binary mask")
    parser.add_argument("--mask-label", type=int, default=MYOCARDIUM_LABEL, help="myocardium label in --mask (default 1)")
    parser.add_argument("--series", type=int, help="SeriesNumber of the IRW series when the folder has several")


def load_mask(path: str | Path, grid: Image, label: int = MYOCARDIUM_LABEL) -> np.ndarray:
    """Boolean myocardium mask on ``grid``'s spatial grid (resampled nearest-neighbour if needed)."""
    import SimpleITK as sitk

    from ..io import to_sitk
    mask_img = read_image(path)
    values = np.unique(mask_img.array)
    binary = set(values.tolist()) <= {0, 1} or len(values) <= 2
    sel = (mask_img.array != 0) if binary else (mask_img.array == label)
    if not sel.any():
        raise InputError(f"mask {path} has no voxel labelled {label} (labels present: {values[:10].tolist()})")
    mask_img = mask_img.with_array(sel.astype(np.uint8), is_sequence=False)
    target = Image(np.zeros(grid.spatial_shape, np.uint8), grid.spacing, grid.origin, grid.direction)
    if mask_img.same_geometry(target):
        return sel.reshape(grid.spatial_shape)
    res = sitk.Resample(to_sitk(mask_img), to_sitk(target), sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    out = sitk.GetArrayFromImage(res).astype(bool)
    if not out.any():
        raise InputError(f"mask {path} does not overlap the IRW slice(s)")
    return out


def find_phantom_mask(series: SeriesInfo, folder: Path) -> Path | None:
    """The ground-truth label map of a phantom IRW series, if ``folder`` is (in) a phantom study.

    A phantom subject folder holds ``truth.json`` whose ``series`` entries name their
    description, series number and ``truth_files``; the labels file holds 1 = myocardium.
    """
    for root in (folder, *folder.parents[:2]):
        manifest = root / "truth.json"
        if not manifest.is_file():
            continue
        try:
            entries = json.loads(manifest.read_text()).get("series", {})
        except (OSError, ValueError):
            return None
        for entry in entries.values():
            if entry.get("description") == series.description and entry.get("series_number") == series.series_number:
                labels = (entry.get("truth_files") or {}).get("labels")
                return root / labels if labels and (root / labels).is_file() else None
        return None
    return None


def write_result(result, out: Path) -> dict[str, Any]:
    """t1_map.nrrd, r2_map.nrrd, corrected.nrrd, dvf.nrrd (LPS mm) and result.json in ``out``."""
    from .warp import dvf_to_lps_mm
    out.mkdir(parents=True, exist_ok=True)
    write_image(result.t1, out / "t1_map.nrrd")
    write_image(result.r2, out / "r2_map.nrrd")
    if result.r2_before is not None:
        write_image(result.r2_before, out / "r2_map_before.nrrd")
    write_image(result.corrected, out / "corrected.nrrd")
    dvf = result.dvf if result.dvf.ndim == 5 else result.dvf[:, None]  # [frame, slice, 2, row, col]
    write_displacement_sequence(dvf_to_lps_mm(dvf, result.t1.spacing, result.t1.direction), result.t1,
                                out / "dvf.nrrd", result.corrected.frame_meta)
    summary = result.to_dict()
    (out / "result.json").write_text(json.dumps(summary, indent=2))
    return summary


def _irw_series(scan: DicomScan, number: int | None) -> list[SeriesInfo]:
    irw = scan.of_kind("irw")
    if number is not None:
        irw = [s for s in irw if s.series_number == number]
        if not irw:
            raise InputError(f"no IRW series with SeriesNumber {number} in {scan.root}")
    if not irw:
        found = ", ".join(f"{s.description!r} ({s.kind})" for s in scan.series) or "nothing"
        raise InputError(f"no IRW (MOLLI/ShMOLLI) series in {scan.root}; found {found}")
    return irw


def process_study(folder: Path, out: Path, method: str, mask_path: str | None = None, mask_label: int = 1,
                  series_number: int | None = None, device: str | None = None,
                  progress: ProgressCallback | None = None, scan: DicomScan | None = None) -> list[dict[str, Any]]:
    """Every selected IRW series of ``folder``: results into ``out`` (a sub-folder each when several)."""
    from ..study import check_output_folder
    check_output_folder(folder, out)
    from .pipeline import correct_and_map  # lazy: keeps `cmr --help` free of torch
    if folder.is_file() and folder.name.lower().endswith(SUFFIXES):
        image = read_image(folder)
        mask = load_mask(mask_path, image, mask_label) if mask_path else None
        result = correct_and_map(image, method, mask=mask, device=device, progress=progress)
        summary = write_result(result, out)
        summary.update(series=image.meta.get("SeriesDescription", folder.name), out=str(out), mask=mask_path)
        return [summary]
    scan = scan or scan_folder(folder, progress)
    todo = _irw_series(scan, series_number)
    loaded = [(s, load_series(s)) for s in todo]  # all inputs checked before anything is written
    results = []
    for s, image in loaded:
        mask_file = mask_path or find_phantom_mask(s, folder if folder.is_dir() else folder.parent)
        mask = load_mask(mask_file, image, mask_label) if mask_file else None
        result = correct_and_map(image, method, mask=mask, device=device, progress=progress)
        target = out if len(loaded) == 1 else out / f"{s.series_number or 0:03d}_{re.sub(r'[^A-Za-z0-9]+', '_', s.description)}"
        summary = write_result(result, target)
        summary.update(series=s.description, out=str(target), mask=str(mask_file) if mask_file else None)
        results.append(summary)
    return results


def run(args: argparse.Namespace) -> int:
    from ..progress import make_progress
    from .pipeline import moconet_installed
    method = args.method or ("moconet" if moconet_installed() else "classical")
    results = process_study(Path(args.folder), Path(args.out), method, args.mask, args.mask_label,
                            args.series, args.device, make_progress(args))
    for r in results:
        myo = (f"myocardial T1 {r['t1_myocardium_ms']:.0f} ms, mean R² {r['r2_myocardium_mean']:.3f}"
               if r["t1_myocardium_ms"] is not None else "no myocardium mask: no myocardial summary")
        print(f"{r['series']}: {r['method']}, {r['n_frames']} frames, {myo}, {r['seconds']:.2f} s -> {r['out']}")
        for note in r["notes"]:
            print(f"  note: {note}")
    return 0


def run_on_study(scan: DicomScan, out: Path, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """`cmr run` step: every IRW series with MOCOnet when its weights are installed, else fit only
    (the classical registration takes tens of seconds per series: too slow for a default run)."""
    from .pipeline import moconet_installed
    method = "moconet" if moconet_installed() else "none"
    results = process_study(scan.root, out, method, progress=progress, scan=scan) if scan.of_kind("irw") else []
    label = "MOCOnet, phantom-trained demonstration weights" if method == "moconet" else "no motion correction"
    lines = [f"{r['series']}: T1/R² maps ({label})"
             + (f", myocardial T1 {r['t1_myocardium_ms']:.0f} ms, mean R² {r['r2_myocardium_mean']:.3f}"
                if r["t1_myocardium_ms"] is not None else "") for r in results]
    return {"method": method, "series": results, "lines": lines}
