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


def rigid_pair(fixed: np.ndarray, moving: np.ndarray, *, metric: str = "mean_squares", mask: np.ndarray | None = None,
               iterations: int = 100) -> sitk.Transform:
    """Euler (rotation about the image centre + shift) transform aligning ``moving`` to ``fixed``."""
    f = sitk.GetImageFromArray(fixed.astype(np.float32))
    m = sitk.GetImageFromArray(moving.astype(np.float32))
    tx = sitk.CenteredTransformInitializer(f, m, sitk.Euler2DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY)
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
                  metric: str = "mattes", rigid_first: bool = False, mask: np.ndarray | None = None) -> np.ndarray:
    """Sampling DVF ``[2, row, col]`` (pixels) aligning ``moving`` to ``fixed`` (2-D arrays).

    A cubic B-spline transform (``mesh_size``² control cells, multi-resolution L-BFGS-B);
    with ``rigid_first`` an Euler transform is found first and the B-spline refines it (the
    usual rigid-then-deformable recipe for pairs that moved between breath-holds). ``mask``
    (on ``fixed``) restricts the metric to a region, e.g. a dilated heart.
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
        rigid = rigid_pair(fixed, moving, metric=metric, mask=mask)
        reg.SetMovingInitialTransform(rigid)
    reg.SetInitialTransform(bspline, inPlace=True)
    reg.Execute(f, m)
    return _to_dvf(sitk.CompositeTransform([rigid, bspline]) if rigid_first else bspline, f)


def register_rigid(fixed: np.ndarray, moving: np.ndarray, *, metric: str = "mean_squares",
                   mask: np.ndarray | None = None) -> np.ndarray:
    """Sampling DVF ``[2, row, col]`` (pixels) of the Euler transform aligning ``moving`` to ``fixed``."""
    return _to_dvf(rigid_pair(fixed, moving, metric=metric, mask=mask),
                   sitk.GetImageFromArray(fixed.astype(np.float32)))


def _to_dvf(tx: sitk.Transform, fixed: sitk.Image) -> np.ndarray:
    field = sitk.TransformToDisplacementField(tx, sitk.sitkVectorFloat64, fixed.GetSize(), fixed.GetOrigin(),
                                              fixed.GetSpacing(), fixed.GetDirection())
    disp = sitk.GetArrayFromImage(field)  # [row, col, (x=col, y=row)] in pixel units (spacing 1)
    return np.stack([disp[..., 1], disp[..., 0]]).astype(np.float32)
