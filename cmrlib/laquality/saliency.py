"""HiResCAM saliency of the LA quality network (the card's explanation method, Draelos & Carin 2020).

HiResCAM multiplies the gradient of the chosen output with the feature maps of the last
convolutional stage element-wise and sums over channels — unlike Grad-CAM, which first averages
the gradient over space, so the map shows the locations that actually raised the score. MONAI's
``monai.visualize`` has CAM, Grad-CAM and Grad-CAM++ but not HiResCAM; this is the few lines it
needs, on the encoder's last stage.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def hirescam(model, x: torch.Tensor, output: int = 3, sign: float = 1.0) -> np.ndarray:
    """Saliency ``[N, S, S]`` (≥ 0, unscaled) of ``sign`` × logit ``output`` (default the overall
    quality) for inputs ``x`` ``[N, 1, S, S]``: ``sign`` −1 explains *non-diagnostic* (the
    predicted class of a poor scan), +1 *diagnostic*. The model's parameters are left untouched."""
    was_training = model.training
    model.eval()
    x = x.detach().clone().requires_grad_(True)  # so that a frozen encoder still passes gradients
    with torch.enable_grad():
        feats = model.stages(x)
        last = feats[-1]
        last.retain_grad()
        logits = model.heads(last.mean((2, 3)))
        model.zero_grad(set_to_none=True)
        (sign * logits[:, output]).sum().backward()
        cam = F.relu((last.grad * last).sum(1, keepdim=True))
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return F.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0].detach().cpu().numpy()
