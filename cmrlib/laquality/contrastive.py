"""Supervised contrastive pre-training pieces of the contrastive LA-quality variant (seed 001).

:class:`SupConLoss` is Khosla et al.'s supervised contrastive loss (the card's equation 4): for
each anchor of the 2N augmented views, the mean log-probability of its positives (views of
scans with the same label) among all other views, at temperature τ. The card sums it over the
four binary labels (equation 5): :func:`multi_label_supcon`.

:class:`LARS` is layer-wise adaptive rate scaling (You et al. 2017) over SGD with momentum, the
card's optimiser for pre-training (lr 0.5, batch 512): each weight tensor's step is scaled by
``trust · ‖w‖ / (‖g‖ + wd ‖w‖)``; biases and normalisation parameters (1-D) are left unscaled and
undecayed, as is usual. Neither is in PyTorch or MONAI (MONAI's ``ContrastiveLoss`` is the
unsupervised SimCLR loss).
"""
from __future__ import annotations

import torch


class SupConLoss(torch.nn.Module):
    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``z``: L2-normalised projections ``[2N, D]`` (two views per scan slice, stacked);
        ``labels``: ``[2N]`` integer labels. Anchors without any positive are skipped."""
        n = z.shape[0]
        sim = z @ z.t() / self.temperature
        self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
        sim = sim.masked_fill(self_mask, float("-inf"))
        log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
        positives = (labels[:, None] == labels[None, :]) & ~self_mask
        count = positives.sum(1)
        keep = count > 0
        if not keep.any():
            return z.sum() * 0.0
        mean_log_pos = (log_prob.masked_fill(~positives, 0.0).sum(1)[keep]) / count[keep]
        return -mean_log_pos.mean()


def multi_label_supcon(loss: SupConLoss, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The card's equation 5: the supervised contrastive loss summed over the label columns of
    ``labels`` ``[2N, L]``."""
    return sum(loss(z, labels[:, j].long()) for j in range(labels.shape[1]))


class LARS(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 0.5, momentum: float = 0.9, weight_decay: float = 1e-6,
                 trust: float = 0.001) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust=trust))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if p.ndim > 1:
                    g = g.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.norm(p), torch.norm(g)
                    ratio = torch.where((w_norm > 0) & (g_norm > 0), group["trust"] * w_norm / g_norm,
                                        torch.ones_like(w_norm))
                    g = g * ratio
                state = self.state[p]
                buf = state.get("momentum")
                if buf is None:
                    buf = state["momentum"] = torch.clone(g).detach()
                else:
                    buf.mul_(group["momentum"]).add_(g)
                p.add_(buf, alpha=-group["lr"])
        return loss
