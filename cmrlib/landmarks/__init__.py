"""Landmarks: anterior RV insertion point and LV centre on short-axis images (two-stage
ResNet50V2-style regressors, thesis ch. 5 / appendix A.4), AHA segments and per-segment
statistics (docs/methods/landmarks.md)."""
