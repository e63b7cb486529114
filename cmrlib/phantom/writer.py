"""Writing a phantom study to disk (phantom layer f): DICOM series, truth NRRDs, truth.json, PNG sheets.

Layout of one subject folder::

    dicom/<NN>_<series>/IM_*.dcm     one folder per series, as a scanner exports them
    truth/<series>_labels.nrrd       mask labels (see truth.json "label_table")
    truth/<series>_aha.nrrd          AHA segment (1..17) of each LV myocardium pixel
    truth/<series>_t1_ms.nrrd        true T1 (ms) of the pixels (IRW / T1 map series)
    truth/<series>_disp_{row,col}_px.nrrd   IRW displacement fields (frames x rows x cols, pixels)
    truth.json                       every parameter, label and landmark
    sheets/<NN>_<series>.png         contact sheet of each series

The folder is written next to its final place and renamed when complete, so an
interrupted run leaves no partial subject.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw
from pydicom.uid import generate_uid

from ..errors import InputError
from ..image import Image
from ..io import StudyInfo, write_dicom_series, write_image
from ..progress import ProgressCallback, report
from .generate import Series, Study
from ..atomic import replace_file

SHEET_TILE = 160  # px per tile in contact sheets
DERIVED_MAPS = ("r2",)  # series maps that are scanner outputs, not truth: not written to truth/


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def series_folder_name(series: Series) -> str:
    """``<NN>_<description>`` folder name of a series."""
    return f"{series.series_number:02d}_{_slug(series.description)}"


def study_info(study: Study) -> StudyInfo:
    """Deterministic patient/study identity of a phantom subject (same seed -> same UIDs)."""
    seed = study.subject.seed
    return StudyInfo.new(f"cmr-phantom-{seed}", patient_name=f"PHANTOM^CMR{seed}",
                         study_description=f"CMR phantom (synthetic) seed {seed}", patient_age="055Y")


# ---- contact sheets ---------------------------------------------------------------------------
def _to_uint8(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (np.clip((a - lo) / max(hi - lo, 1e-6), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _tile(img: np.ndarray, lo: float, hi: float, label: str, colour: bool = False) -> PILImage.Image:
    g = _to_uint8(img, lo, hi)
    if colour:  # T1 maps: a perceptual colour scale as scanners display them
        from matplotlib import colormaps
        rgb = (colormaps["inferno"](g)[..., :3] * 255).astype(np.uint8)
        tile = PILImage.fromarray(rgb, "RGB")
    else:
        tile = PILImage.fromarray(g, "L").convert("RGB")
    tile = tile.resize((SHEET_TILE, SHEET_TILE), PILImage.BILINEAR)
    d = ImageDraw.Draw(tile)
    d.text((3, 2), label, fill=(255, 255, 0))
    return tile


def contact_sheet(series: Series, max_columns: int = 8) -> PILImage.Image:
    """A PNG-ready overview of a series: cine slices x phases, IRW frames with TI, stacks with class."""
    img = series.image
    frames = img.frames()  # [frame, slice, row, col]
    tiles: list[list[PILImage.Image]] = []
    if series.kind == "cine":
        n_ph = frames.shape[0]
        cols = np.unique(np.linspace(0, n_ph - 1, min(6, n_ph)).round().astype(int))
        lo, hi = np.percentile(frames, [0.5, 99.5])
        for s in range(frames.shape[1]):
            tiles.append([_tile(frames[f, s], lo, hi, f"sl {s} t {img.frame_meta[f]['TriggerTime']:.0f}ms")
                          for f in cols])
    elif series.kind == "irw":
        lo, hi = np.percentile(frames, [0.5, 99.8])
        row = [_tile(frames[f, 0], lo, hi, f"TI {img.frame_meta[f]['InversionTime']:.0f}") for f in range(frames.shape[0])]
        tiles = [row[i:i + max_columns] for i in range(0, len(row), max_columns)]
    elif series.kind == "t1map":
        hi = 2200.0 if series.truth.get("condition") != "post" else 1100.0
        tiles = [[_tile(frames[0, 0], 0.0, hi, f"T1 0-{hi:.0f} ms", colour=True),
                  _tile(series.maps["r2"].array[0], 0.9, 1.0, "R2 0.9-1")]]
    else:
        vol = frames[0]
        # the heart is a small part of the field of view: window on the brightest 0.1 %
        hi = float(np.percentile(vol, 99.9))
        if series.kind == "lge_psir":  # nulled myocardium black, background dark grey
            lo = max(float(np.percentile(vol, 0.5)), -0.2 * hi)
        else:
            lo = 0.0
        idx = range(vol.shape[0]) if series.kind != "la_lge" else range(0, vol.shape[0], max(1, vol.shape[0] // 16))
        info = {s["index"]: s for s in series.truth.get("slices", [])}
        row = []
        for k in idx:
            label = f"sl {k}"
            if k in info:
                label += f" {info[k]['class']}"
                if "lge_likelihood" in info[k]:
                    label += f" L{info[k]['lge_likelihood']:.0f}"
            row.append(_tile(vol[k], lo, hi, label))
        tiles = [row[i:i + max_columns] for i in range(0, len(row), max_columns)]
    n_cols = max(len(r) for r in tiles)
    sheet = PILImage.new("RGB", (n_cols * SHEET_TILE, len(tiles) * SHEET_TILE + 16))
    d = ImageDraw.Draw(sheet)
    d.text((3, 2), f"#{series.series_number} {series.description}  (synthetic phantom)", fill=(255, 255, 255))
    for r, row in enumerate(tiles):
        for c, t in enumerate(row):
            sheet.paste(t, (c * SHEET_TILE, 16 + r * SHEET_TILE))
    return sheet


# ---- truth images --------------------------------------------------------------------------------------
def _sequence_like(ref: Image, array: np.ndarray) -> Image:
    return Image(array, ref.spacing, ref.origin, ref.direction, True, {}, [{} for _ in range(array.shape[0])])


def _write_truth_images(series: Series, folder: Path) -> dict[str, str]:
    files: dict[str, str] = {}

    def put(key: str, image: Image) -> None:
        path = folder / f"{series.name}_{key}.nrrd"
        write_image(image, path)
        files[key] = f"truth/{path.name}"

    put("labels", series.labels)
    if series.aha is not None:
        put("aha", series.aha)
    for key, image in series.maps.items():
        if key in DERIVED_MAPS:  # scanner-derived (not ground truth): kept in memory only
            continue
        put(key, image)
    if series.displacement is not None:
        # forward fields only: the inverse follows from them (artefacts.invert_displacement,
        # Series.inverse_displacement in memory). Stored on a 1/256-pixel grid: far below any
        # registration error, and the zeroed low mantissa bits let gzip compress the fields.
        ref = series.labels
        q = (np.round(series.displacement * 256.0) / 256.0).astype(np.float32)
        put("disp_row_px", _sequence_like(ref, q[:, 0]))
        put("disp_col_px", _sequence_like(ref, q[:, 1]))
    return files


# ---- DICOM ----------------------------------------------------------------------------------------------
def _write_dicom(series: Series, folder: Path, info: StudyInfo, seed: int) -> int:
    img = series.image
    meta = dict(img.meta)
    meta["SliceThickness"] = float(series.dicom.get("SliceThickness", img.spacing[2]))
    image = Image(img.array, img.spacing, img.origin, img.direction, img.is_sequence, meta, img.frame_meta)
    extra = {k: v for k, v in series.dicom.items() if k != "SliceThickness"}
    for key in ("ScanningSequence", "SequenceVariant"):
        if isinstance(extra.get(key), str):
            extra[key] = extra[key].split("\\")
    extra.setdefault("ProtocolName", series.description)
    extra.setdefault("PatientPosition", "HFS")
    extra.setdefault("ManufacturerModelName", "SlicerCMR phantom")
    extra.setdefault("NominalInterval", int(round(60000.0 / float(extra.get("HeartRate", 60)))))
    uid = generate_uid(entropy_srcs=["cmr-phantom", str(seed), series.name])
    paths = write_dicom_series(image, folder, description=series.description, series_number=series.series_number,
                               study=info, image_type=series.image_type, rescale_slope=series.rescale_slope,
                               rescale_intercept=series.rescale_intercept, extra=extra, series_uid=uid)
    return len(paths)


def write_study(study: Study, out_dir: str | Path, *, dicom: bool = True, sheets: bool = True,
                overwrite: bool = False, progress: ProgressCallback | None = None) -> Path:
    """Write one subject folder (layout in the module docstring); return its path."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InputError(f"output folder {out} exists and is not empty; choose another --out or remove it")
    tmp = out.parent / f".tmp-{out.name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        info = study_info(study)
        truth = json.loads(json.dumps(study.truth))
        names = list(study.series)
        for i, name in enumerate(names):
            ser = study.series[name]
            report(progress, "write", i, len(names), name)
            entry = truth["series"].setdefault(name, {})
            folder_name = series_folder_name(ser)
            if dicom:
                n = _write_dicom(ser, tmp / "dicom" / folder_name, info, study.subject.seed)
                entry["dicom_folder"] = f"dicom/{folder_name}"
                entry["dicom_files"] = n
            entry["truth_files"] = _write_truth_images(ser, tmp / "truth")
            entry["geometry"] = {"origin_lps_mm": list(ser.image.origin), "spacing_mm": list(ser.image.spacing),
                                 "direction": np.asarray(ser.image.direction).round(8).tolist(),
                                 "shape": list(ser.image.array.shape), "is_sequence": ser.image.is_sequence}
            entry["image_type"] = list(ser.image_type)
            entry["rescale"] = {"slope": ser.rescale_slope, "intercept": ser.rescale_intercept}
            if sheets:
                path = tmp / "sheets" / f"{folder_name}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                contact_sheet(ser).save(path, compress_level=6)
                entry["sheet"] = f"sheets/{path.name}"
        truth["study"] = {"patient_id": info.patient_id, "patient_name": info.patient_name,
                          "study_instance_uid": info.study_uid, "frame_of_reference_uid": info.frame_of_reference_uid}
        (tmp / "truth.json").write_text(json.dumps(truth, indent=1))
        report(progress, "write", len(names), len(names), "done")
        if out.exists():
            shutil.rmtree(out)
        replace_file(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def thumbnail(study: Study, size: int = 256) -> PILImage.Image:
    """A 2x2 overview of a study (cine, LGE PSIR, native T1 map, IRW frame) for the Sample Data menu."""
    tiles = []
    cine = study.series.get("cine")
    lge = study.series.get("lge_psir")
    mid = None
    if lge is not None:  # the LV slice with the largest blood pool
        areas = [sl["areas"]["lv_blood_mm2"] if sl["class"] == "LV" else -1 for sl in lge.truth["slices"]]
        mid = int(np.argmax(areas))
    half = size // 2

    def crop(a: np.ndarray, lo: float, hi: float, colour: bool = False) -> PILImage.Image:
        h, w = a.shape
        c = a[h // 2 - h // 4:h // 2 + h // 4, w // 2 - w // 4:w // 2 + w // 4]
        g = _to_uint8(c, lo, hi)
        if colour:
            from matplotlib import colormaps
            return PILImage.fromarray((colormaps["inferno"](g)[..., :3] * 255).astype(np.uint8)).resize((half, half))
        return PILImage.fromarray(g).convert("RGB").resize((half, half), PILImage.BILINEAR)

    if cine is not None and mid is not None:
        a = cine.image.frames()[0, mid]
        tiles.append(crop(a, 0, float(np.percentile(a, 99.8))))
    if lge is not None and mid is not None:
        a = lge.image.array[mid]
        hi = float(np.percentile(a, 99.8))
        tiles.append(crop(a, -0.2 * hi, hi))
    t1 = study.series.get("t1map_native_mid")
    if t1 is not None:
        tiles.append(crop(t1.image.array[0], 0, 2200, colour=True))
    irw = study.series.get("irw_native_mid")
    if irw is not None:
        a = irw.image.frames()[-1, 0]
        tiles.append(crop(a, 0, float(np.percentile(a, 99.8))))
    out = PILImage.new("RGB", (size, size))
    for i, t in enumerate(tiles[:4]):
        out.paste(t, ((i % 2) * half, (i // 2) * half))
    ImageDraw.Draw(out).text((3, size - 12), "synthetic CMR phantom", fill=(255, 255, 0))
    return out


def zip_folder(folder: str | Path, zip_path: str | Path) -> Path:
    """Zip a folder reproducibly (sorted entries, fixed timestamps, deflate); return the path."""
    folder, zip_path = Path(folder), Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(f".tmp-{zip_path.name}")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zi = zipfile.ZipInfo(str(path.relative_to(folder)).replace(os.sep, "/"), date_time=(2026, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, path.read_bytes(), compresslevel=9)
    replace_file(tmp, zip_path)
    return zip_path


def truth_of(folder: str | Path) -> dict[str, Any]:
    """Read the truth.json of a written subject folder."""
    path = Path(folder) / "truth.json"
    if not path.is_file():
        raise InputError(f"{folder} has no truth.json (not a phantom subject folder)")
    return json.loads(path.read_text())
