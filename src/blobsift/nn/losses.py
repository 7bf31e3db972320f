"""Losses for rare-signal classification."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from blobsift._validation import check_in_range

__all__ = ["FocalLoss"]


class FocalLoss(nn.Module):
    """Binary focal loss (Lin et al., 2017, "Focal Loss for Dense Object Detection").

    ``FL(p_t) = -alpha_t * (1 - p_t) ** gamma * log(p_t)``, averaged over the batch.

    Parameters
    ----------
    alpha : float or None
        Weight of the positive (signal) class; negatives get ``1 - alpha``. ``0.5``
        weighs both classes equally (and halves the loss); ``None`` applies no class
        weight. The paper's 0.25 *down*-weights positives; when the sampler already
        balances the classes use 0.5 (see :func:`blobsift.nn.loop.default_focal_alpha`).
    gamma : float
        Focusing parameter: 0 gives (alpha-weighted) binary cross-entropy; larger values
        down-weight easy examples.

    Notes
    -----
    The loss is computed from log-sigmoids, so it stays finite for very confident logits,
    and the modulating factor is computed as ``exp(gamma * log(1 - p_t))`` so its gradient
    is defined at ``p_t = 1`` for any ``gamma >= 0``.
    """

    def __init__(self, alpha: float | None = 0.25, gamma: float = 2.0) -> None:
        super().__init__()
        if alpha is not None:
            check_in_range(alpha, name="alpha", low=0.0, high=1.0)
        check_in_range(gamma, name="gamma", low=0.0)
        self.alpha = alpha
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return the mean focal loss.

        Parameters
        ----------
        logits : Tensor
            Raw scores of shape (B,) or (B, 1).
        targets : Tensor
            Labels in {0, 1} with the same number of elements as ``logits``.
        """
        logits = logits.reshape(-1)
        targets = targets.reshape(-1).to(logits.dtype)
        if logits.shape != targets.shape:
            raise ValueError(
                f"logits and targets must have the same number of elements; got "
                f"{logits.numel()} and {targets.numel()}."
            )
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        # log(1 - p_t) = log-sigmoid of the logit with the sign that favours the wrong class.
        signed = torch.where(targets > 0.5, -logits, logits)
        modulation = torch.exp(self.gamma * F.logsigmoid(signed)) if self.gamma else 1.0
        loss = modulation * bce
        if self.alpha is not None:
            loss = loss * (self.alpha * targets + (1.0 - self.alpha) * (1.0 - targets))
        return loss.mean()

    def extra_repr(self) -> str:
        """Show the loss parameters in ``repr``."""
        return f"alpha={self.alpha}, gamma={self.gamma}"
