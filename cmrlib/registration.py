"""Classical 2-D image registration (SimpleITK): the one home for pairwise registration used by
the capabilities' baselines (CMRMotion's model-based MOLLI correction, CMRStressT1's classical
stress-to-rest registration).

Returns *sampling* DVFs ``[2, row, col]`` in pixels in the project convention
(:mod:`cmrlib.warp`): ``registered(x) = moving(x + dvf(x))``.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

METRICS = ("mattes", "mean_squares", "correlation")


def _set_metric(reg: sitk.ImageRegistrationMethod, metric: str) -> None:
    if metric == "mattes":
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    elif metric == "mean_squares":
        reg.SetMetricAsMeanSquares()
    elif metric == "correlation":
        reg.SetMetricAsCorrelation()
    else:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")


def _method(metric: str, mask: np.ndarray | None, fixed: sitk.Image) -> sitk.ImageRegistrationMethod:
    reg = sitk.ImageRegistrationMethod()
    _set_metric(reg, metric)
    reg.SetMetricSamplingStrategy(reg.REGULAR)
    reg.SetMetricSamplingPercentage(0.5, seed=1)
    reg.SetInterpolator(sitk.sitkLinear)
    if mask is not None:
        m = sitk.GetImageFromArray(mask.astype(np.uint8))
        m.CopyInformation(fixed)
        reg.SetMetricFixedMask(m)
    return reg


def coarse_shift(fixed: np.ndarray, moving: np.ndarray, mask: np.ndarray | None, max_px: int) -> tuple[int, int]:
    """(rows, cols) integer shift ``s`` maximising the correlation of ``fixed(x)`` and
    ``moving(x + s)`` inside ``mask`` — an exhaustive search over ±``max_px`` at half
    resolution, so a gradient optimiser starts within reach of large motion (correlation, not
    squared differences: a global T1 change between the maps must not pull the shift)."""
    from scipy import ndimage
    f = ndimage.zoom(fixed.astype(np.float32), 0.5, order=1)
    m = ndimage.zoom(moving.astype(np.float32), 0.5, order=1)
    w = ndimage.zoom(mask.astype(np.float32), 0.5, order=0) > 0.5 if mask is not None else np.ones(f.shape, bool)
    rows, cols = np.nonzero(w)
    if rows.size == 0:
        return 0, 0
    r = max(1, max_px // 2)
    pad = np.pad(m, r, mode="edge")
    fv = f[rows, cols] - f[rows, cols].mean()
    best, best_s = np.inf, (0, 0)
    for dr in range(-r, r + 1):
        for dc in range(-r, r + 1):
            mv = pad[rows + r + dr, cols + r + dc]
            err = -float(np.dot(fv, mv - mv.mean()) / (np.linalg.norm(mv - mv.mean()) + 1e-9))
            if err < best:
                best, best_s = err, (2 * dr, 2 * dc)
    return best_s


def rigid_pair(fixed: np.ndarray, moving: np.ndarray, *, metric: str = "mean_squares", mask: np.ndarray | None = None,
               iterations: int = 100, search_px: int = 0) -> sitk.Transform:
    """Euler (rotation about the image centre + shift) transform aligning ``moving`` to ``fixed``;
    ``search_px`` > 0 starts from the best shift of :func:`coarse_shift` within that range."""
    f = sitk.GetImageFromArray(fixed.astype(np.float32))
    m = sitk.GetImageFromArray(moving.astype(np.float32))
    tx = sitk.CenteredTransformInitializer(f, m, sitk.Euler2DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY)
    if search_px > 0:
        dr, dc = coarse_shift(fixed, moving, mask, search_px)
        tx.SetTranslation((float(dc), float(dr)))  # (x = col, y = row), pixel units (spacing 1)
    reg = _method(metric, mask, f)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3, numberOfIterations=iterations,
                                                 gradientMagnitudeTolerance=1e-6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SetInitialTransform(tx, inPlace=True)
    reg.Execute(f, m)
    return tx


def register_pair(fixed: np.ndarray, moving: np.ndarray, mesh_size: int = 6, iterations: int = 30, *,
                  metric: str = "mattes", rigid_first: bool = False, mask: np.ndarray | None = None,
                  search_px: int = 0) -> np.ndarray:
    """Sampling DVF ``[2, row, col]`` (pixels) aligning ``moving`` to ``fixed`` (2-D arrays).

    A cubic B-spline transform (``mesh_size``² control cells, multi-resolution L-BFGS-B);
    with ``rigid_first`` an Euler transform is found first and the B-spline refines it (the
    usual rigid-then-deformable recipe for pairs that moved between breath-holds). ``mask``
    (on ``fixed``) restricts the metric to a region, e.g. a dilated heart; ``search_px`` starts
    the rigid stage from an exhaustive shift search (:func:`coarse_shift`).
    """
    f = sitk.GetImageFromArray(fixed.astype(np.float32))
    m = sitk.GetImageFromArray(moving.astype(np.float32))
    bspline = sitk.BSplineTransformInitializer(f, [mesh_size, mesh_size], 3)
    reg = _method(metric, mask, f)
    reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=iterations,
                             maximumNumberOfCorrections=5, maximumNumberOfFunctionEvaluations=4 * iterations)
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    if rigid_first:
        rigid = rigid_pair(fixed, moving, metric=metric, mask=mask, search_px=search_px)
        reg.SetMovingInitialTransform(rigid)
    reg.SetInitialTransform(bspline, inPlace=True)
    reg.Execute(f, m)
    return _to_dvf(sitk.CompositeTransform([rigid, bspline]) if rigid_first else bspline, f)


def register_rigid(fixed: np.ndarray, moving: np.ndarray, *, metric: str = "mean_squares",
                   mask: np.ndarray | None = None, search_px: int = 0) -> np.ndarray:
    """Sampling DVF ``[2, row, col]`` (pixels) of the Euler transform aligning ``moving`` to ``fixed``."""
    return _to_dvf(rigid_pair(fixed, moving, metric=metric, mask=mask, search_px=search_px),
                   sitk.GetImageFromArray(fixed.astype(np.float32)))


def _to_dvf(tx: sitk.Transform, fixed: sitk.Image) -> np.ndarray:
    field = sitk.TransformToDisplacementField(tx, sitk.sitkVectorFloat64, fixed.GetSize(), fixed.GetOrigin(),
                                              fixed.GetSpacing(), fixed.GetDirection())
    disp = sitk.GetArrayFromImage(field)  # [row, col, (x=col, y=row)] in pixel units (spacing 1)
    return np.stack([disp[..., 1], disp[..., 0]]).astype(np.float32)
