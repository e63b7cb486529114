"""DICOM study loading: cmrlib.io versus SimpleITK's GDCM series reader on the same files.

Speed (scan + load of every series) and agreement (voxels, origin, direction, spacing) with
the baseline. The study is written here with pydicom: 12-slice x 25-phase cine, a ShMOLLI
and a MOLLI 5(3)3 set, a 12-slice T1 map and LGE PSIR, 192 x 192, double-oblique.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from cmrlib import Image
from cmrlib.io import StudyInfo, load_series, scan_folder, write_dicom_series


def _write_study(root: Path, n: int = 192) -> None:
    rng = np.random.default_rng(0)
    d = Rotation.from_euler("zyx", [35, -25, 50], degrees=True).as_matrix()
    sp, org, study = (1.4, 1.4, 8.0), (-120.0, -90.0, 40.0), StudyInfo.new("bench")
    write_dicom_series(Image(rng.integers(0, 800, (25, 12, n, n)), sp, org, d, True, {},
                             [{"TriggerTime": 35.0 * k} for k in range(25)]), root / "cine", description="cine SAX",
                       series_number=1, study=study)
    tis = [100.0, 180.0, 260.0, 1100.0, 1180.0, 2100.0, 3100.0]
    write_dicom_series(Image(rng.integers(0, 800, (7, n, n)), sp, org, d, True, {},
                             [{"InversionTime": t} for t in tis]), root / "shmolli", description="ShMOLLI",
                       series_number=2, study=study)
    molli = [120.0, 1020.0, 1920.0, 2820.0, 3720.0, 200.0, 1100.0, 2000.0]
    write_dicom_series(Image(rng.integers(0, 800, (8, n, n)), sp, org, d, True, {},
                             [{"InversionTime": t} for t in molli]), root / "molli", description="MOLLI",
                       series_number=3, study=study)
    write_dicom_series(Image(rng.integers(0, 2000, (12, n, n)), sp, org, d), root / "t1", description="T1 map",
                       series_number=4, study=study, image_type=("DERIVED", "PRIMARY", "T1 MAP"))
    write_dicom_series(Image(rng.integers(-500, 1500, (12, n, n)), sp, org, d), root / "lge",
                       description="LGE PSIR", series_number=5, study=study, rescale_intercept=-4096,
                       extra={"InversionTime": 300.0})


def _sitk_load_all(root: Path) -> dict[str, sitk.Image]:
    out = {}
    reader = sitk.ImageSeriesReader()
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for uid in reader.GetGDCMSeriesIDs(str(folder)):
            files = reader.GetGDCMSeriesFileNames(str(folder), uid)
            reader.SetFileNames(files)
            out[folder.name] = reader.Execute()
    return out


def run():
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_study(root)
        t0 = time.perf_counter()
        scan = scan_folder(root)
        images = {s.instances[0].path.parent.name: load_series(s) for s in scan.series}
        ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        base = _sitk_load_all(root)
        baseline = time.perf_counter() - t0
        rows = []
        for name in ("t1", "lge"):  # volumes: both readers give one 3-D image
            a, b = images[name], base[name]
            rows.append({
                "series": name,
                "max abs voxel diff": float(np.abs(a.array - sitk.GetArrayFromImage(b)).max()),
                "origin diff (mm)": float(np.abs(np.subtract(a.origin, b.GetOrigin())).max()),
                "direction diff": float(np.abs(a.direction - np.reshape(b.GetDirection(), (3, 3))).max()),
                "spacing diff (mm)": float(np.abs(np.subtract(a.spacing, b.GetSpacing())).max()),
            })
        n_files = sum(s.n_files for s in scan.series)
        speed = [{
            "files": n_files,
            "cmrlib scan+classify+load (s)": ours,
            "SimpleITK/GDCM discover+load (s)": baseline,
            "ratio (baseline / ours)": baseline / ours,
            "classified": ", ".join(f"{s.description}={s.kind}" for s in scan.series),
        }]
        return [("speed (same files, same run)", speed), ("agreement with SimpleITK (volumes)", rows)]
