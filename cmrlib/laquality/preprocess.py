"""Preparing a left-atrial 3-D LGE volume and its slices for the two networks (seed 001).

The card's data are axial 3-D LGE at 1.25 × 1.25 × 2.5 mm, each slice resized to 128 × 128.
Here:

* :func:`check_volume` refuses what is not an axial 3-D volume: a 2-D image, a multi-slice 2-D
  stack (short-axis LGE: slices ≥ 5 mm apart), a volume too small to hold an atrium;
* :func:`to_card_grid` resamples anything else onto an axial grid at the card's spacing when its
  spacing or orientation differs (a note says from what), keeping the volume's field of view;
* stage 1 (:func:`detector_input`) sees each whole slice — its central ≤ :data:`DETECTOR_FOV_MM`
  square, as scans are planned with the heart at the centre — resized to 128 px;
* stage 2 (:func:`quality_window`) sees a :data:`QUALITY_FOV_MM` square centred on the detected
  atrium (the card resized whole slices; a window on the atrium makes the input independent of
  the acquired field of view, which varies between sites far more than the atrium does).

Intensities: the volume's 0.5–99.5th percentiles scaled to 0–1 (:func:`normalise_volume`), one
scale for all slices so that nulling and enhancement keep their meaning across the volume.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..image import Image

CARD_SPACING_MM = (1.25, 1.25, 2.5)  # (col, row, slice)
SIZE = 128
DETECTOR_FOV_MM = 240.0
QUALITY_FOV_MM = 200.0
MAX_SLICE_MM = 5.0  # a "3-D" volume with slices further apart is a 2-D multi-slice stack
MIN_SLICES = 8
SPACING_TOLERANCE = 0.2  # relative spacing difference that triggers resampling
AXIAL_TOLERANCE_DEG = 10.0


def _tilt_deg(direction: np.ndarray) -> float:
    """Angle between the slice normal and the patient's head-feet axis (degrees)."""
    normal = np.asarray(direction)[:, 2]
    return float(np.degrees(np.arccos(np.clip(abs(normal[2]) / max(np.linalg.norm(normal), 1e-9), 0.0, 1.0))))


def check_volume(image: Image, description: str = "the input") -> None:
    """InputError for what is not a 3-D LGE volume of the atria."""
    if image.is_sequence:
        raise InputError(f"{description} is a sequence of {image.n_frames} frames; the LA quality assessment reads "
                         "one 3-D LGE volume")
    n = image.array.shape[0]
    if n < MIN_SLICES:
        raise InputError(f"{description} has {n} slice(s): a 2-D image, not an axial 3-D LGE volume of the left "
                         f"atrium (at least {MIN_SLICES} slices)")
    slice_mm = float(image.spacing[2])
    if slice_mm > MAX_SLICE_MM:
        kind = ("a short-axis stack" if _tilt_deg(image.direction) > 20 else "a 2-D multi-slice stack")
        raise InputError(f"{description} is {kind} ({n} slices {slice_mm:g} mm apart), not a 3-D LGE volume; the "
                         "LA quality assessment reads axial 3-D LGE (card: 1.25 × 1.25 × 2.5 mm)")
    extent = np.array(image.spacing) * np.array(image.array.shape[::-1])
    if extent[0] < 60 or extent[1] < 60 or extent[2] < 30:
        raise InputError(f"{description} covers {extent[0]:.0f} × {extent[1]:.0f} × {extent[2]:.0f} mm: too small to "
                         "hold the left atrium")


def to_card_grid(image: Image) -> tuple[Image, list[str]]:
    """The volume on an axial grid at the card's spacing (itself when it already is), and notes."""
    tilt = _tilt_deg(image.direction)
    sp = np.array(image.spacing)
    off = np.abs(sp - np.array(CARD_SPACING_MM)) / np.array(CARD_SPACING_MM)
    axial_rows = abs(image.direction[0, 0]) > 0.98 and abs(image.direction[1, 1]) > 0.98
    if tilt <= AXIAL_TOLERANCE_DEG and axial_rows and np.all(off <= SPACING_TOLERANCE):
        return image, []
    import SimpleITK as sitk

    from ..io import from_sitk, to_sitk
    src = to_sitk(image.with_array(image.array.astype(np.float32)))
    # bounding box of the input in LPS, covered by an axial grid (col +x, row +y, slices head → feet)
    shape = np.array(image.array.shape[::-1]) - 1
    corners = np.array([[i, j, k] for i in (0, shape[0]) for j in (0, shape[1]) for k in (0, shape[2])], float)
    lps = image.index_to_lps(corners)
    lo, hi = lps.min(0), lps.max(0)
    spacing = np.array(CARD_SPACING_MM)
    size = np.maximum(np.ceil((hi - lo) / spacing).astype(int) + 1, 1)
    direction = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]]).T  # columns: col, row, slice directions
    origin = np.array([lo[0], lo[1], hi[2]])
    res = sitk.ResampleImageFilter()
    res.SetOutputSpacing(spacing.tolist())
    res.SetSize([int(s) for s in size])
    res.SetOutputOrigin(origin.tolist())
    res.SetOutputDirection(direction.flatten().tolist())
    res.SetInterpolator(sitk.sitkLinear)
    res.SetDefaultPixelValue(0.0)
    out = from_sitk(res.Execute(src), meta=dict(image.meta))
    what = []
    if tilt > AXIAL_TOLERANCE_DEG or not axial_rows:
        what.append(f"reoriented to axial (slice normal {tilt:.0f}° from head–feet)")
    if np.any(off > SPACING_TOLERANCE):
        what.append(f"resampled from {sp[0]:.2f} × {sp[1]:.2f} × {sp[2]:.2f} mm to the card's 1.25 × 1.25 × 2.5 mm")
    return out, ["; ".join(what) + " before assessment"]


def normalise_volume(array: np.ndarray) -> np.ndarray:
    """0.5–99.5th percentile of the whole volume scaled to 0–1 (float32, clipped)."""
    a = np.asarray(array, np.float32)
    lo, hi = np.percentile(a, [0.5, 99.5])
    return np.clip((a - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)


def window(slice_: np.ndarray, centre_rc: tuple[float, float], side_px: float, size: int = SIZE,
           angle_deg: float = 0.0, flip: bool = False, shear: float = 0.0, order: int = 1) -> np.ndarray:
    """A ``size``² view of ``slice_``: the square of side ``side_px`` around ``centre_rc`` (row, col),
    rotated / mirrored / sheared; outside the slice reads 0."""
    t = np.radians(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    m = rot @ np.array([[1.0, shear], [0.0, 1.0]]) * (side_px / size)
    if flip:
        m = m @ np.diag([1.0, -1.0])
    c_out = np.array([(size - 1) / 2.0] * 2)
    offset = np.asarray(centre_rc, float) - m @ c_out
    return ndimage.affine_transform(np.asarray(slice_, np.float32), m, offset=offset, output_shape=(size, size),
                                    order=order, mode="constant", cval=0.0)


def unwindow(view: np.ndarray, shape: tuple[int, int], centre_rc: tuple[float, float], side_px: float,
             order: int = 1) -> np.ndarray:
    """The inverse of an unrotated :func:`window`: a view back onto the slice grid ``shape``."""
    size = view.shape[0]
    scale = size / side_px
    c_in = np.asarray(centre_rc, float)
    offset = np.array([(size - 1) / 2.0] * 2) - scale * c_in
    return ndimage.affine_transform(np.asarray(view, np.float32), np.eye(2) * scale, offset=offset, output_shape=shape,
                                    order=order, mode="constant", cval=0.0)


def detector_side_px(shape: tuple[int, int], pixel_mm: float = CARD_SPACING_MM[0]) -> float:
    """Side of stage 1's square: the slice's larger side, at most :data:`DETECTOR_FOV_MM`."""
    return float(min(max(shape), DETECTOR_FOV_MM / pixel_mm))


def detector_input(volume01: np.ndarray) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Stage-1 inputs ``[Z, 1, 128, 128]`` of a normalised volume on the card grid, the square's
    side (px) and centre (row, col)."""
    shape = volume01.shape[1:]
    side = detector_side_px(shape)
    centre = ((shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0)
    views = np.stack([window(s, centre, side) for s in volume01])
    return views[:, None], side, centre


def quality_side_px(pixel_mm: float = CARD_SPACING_MM[0]) -> float:
    return QUALITY_FOV_MM / pixel_mm


def quality_input(volume01: np.ndarray, slices: list[int], centre_rc: tuple[float, float]) -> np.ndarray:
    """Stage-2 inputs ``[n, 1, 128, 128]``: the window on the atrium of each selected slice."""
    side = quality_side_px()
    return np.stack([window(volume01[k], centre_rc, side) for k in slices])[:, None] if slices else \
        np.zeros((0, 1, SIZE, SIZE), np.float32)
