"""Training an embedding: self-supervised on unlabelled crops, then on labelled pairs.

* :func:`pretrain_encoder`: contrastive learning over two augmentations of the same crop
  (SimCLR's NT-Xent loss), on unlabelled candidate crops;
* :func:`finetune_head`: the contrastive pair loss on class-balanced labelled pairs
  drawn by :func:`sample_pairs`, training the head over frozen body features.

Both draw all randomness from one ``torch.Generator`` and take *raw* crops: each view is
augmented, then normalised.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from blobsift.exceptions import InvalidInputError, SingleClassError
from blobsift.nn.augment import Augmentation
from blobsift.nn.data import network_input
from blobsift.nn.loop import warmup_cosine
from blobsift.nn.models import CropEncoder
from blobsift.nn.threads import torch_threads
from blobsift.types import Progress, ProgressEvent

__all__ = [
    "CONTRASTIVE_AUGMENTATION",
    "calibrate_batch_norm",
    "finetune_head",
    "nt_xent_loss",
    "pair_loss",
    "pretrain_encoder",
    "sample_pairs",
]

#: Views for contrastive learning: rotations, flips, small shifts, gain and some noise, but
#: no blur and no gamma change. Blur and size are what tell an out-of-focus blob from a
#: spot; views that differ in them would teach the encoder to ignore the difference.
CONTRASTIVE_AUGMENTATION = Augmentation(
    max_shift=0.5, noise=0.3, blur_sigma=0.0, blur_probability=0.0, gamma=(1.0, 1.0)
)
_WARMUP_FRACTION = 0.1


def nt_xent_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """The normalised temperature-scaled cross-entropy (SimCLR) of two views of a batch.

    Parameters
    ----------
    first, second : Tensor of shape (B, D)
        Unit-length embeddings of two views; row ``i`` of both comes from the same crop.
    temperature : float
        Softmax temperature on cosine similarities.

    Returns
    -------
    Tensor
        The mean over the 2B views of ``-log softmax`` of the other view of the same crop
        among the 2B - 1 other views.
    """
    if first.shape != second.shape or first.dim() != 2:
        raise InvalidInputError(
            f"both views must have the same (B, D) shape; got {tuple(first.shape)} and "
            f"{tuple(second.shape)}."
        )
    batch = first.shape[0]
    views = torch.cat([first, second])
    logits = views @ views.T / temperature
    logits.fill_diagonal_(float("-inf"))
    partner = torch.cat([torch.arange(batch, 2 * batch), torch.arange(batch)])
    return F.cross_entropy(logits, partner.to(logits.device))


def pair_loss(
    first: torch.Tensor, second: torch.Tensor, same: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Contrastive loss of embedding pairs (Hadsell, Chopra and LeCun, 2006).

    Same-class pairs are pulled together (squared distance); different-class pairs are
    pushed apart until their distance reaches ``margin``. With unit-length embeddings the
    distance lies in [0, 2]; a margin of 1 means cosine similarity below 0.5.

    Parameters
    ----------
    first, second : Tensor of shape (P, D)
        Embeddings of the two crops of each pair.
    same : Tensor of shape (P,)
        1 where both crops have the same label, else 0.
    margin : float
        Distance beyond which different-class pairs cost nothing.
    """
    if first.shape != second.shape or same.shape != first.shape[:1]:
        raise InvalidInputError(
            f"pair shapes disagree: {tuple(first.shape)}, {tuple(second.shape)} and "
            f"same {tuple(same.shape)}."
        )
    distance = (first - second).pow(2).sum(dim=1).clamp_min(1e-12).sqrt()
    same = same.to(distance.dtype)
    pulled = same * distance.pow(2)
    pushed = (1 - same) * F.relu(margin - distance).pow(2)
    return (pulled + pushed).mean()


def sample_pairs(
    labels: torch.Tensor, n_pairs: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw class-balanced pairs of distinct crops for contrastive training.

    Half the pairs are different-class (signal, noise); the other half are same-class,
    split equally between signal-signal and noise-noise. So under a 1:10 imbalance the
    rare class takes part in three quarters of the pairs instead of about a sixth. A crop
    is never paired with itself; a class with one crop gives no same-class pairs (its
    share goes to the other class), and with one crop of each class every pair is a
    different-class pair.

    Parameters
    ----------
    labels : Tensor of shape (N,)
        Binary labels with both classes present.
    n_pairs : int
        Pairs to draw.
    generator : torch.Generator

    Returns
    -------
    first, second : Tensor of shape (n_pairs,)
        Indices into ``labels``.
    same : Tensor of shape (n_pairs,)
        1 for a same-class pair, else 0.
    """
    labels = torch.as_tensor(labels).reshape(-1)
    members = [torch.nonzero(labels == value).flatten() for value in (0, 1)]
    if min(len(m) for m in members) == 0:
        raise SingleClassError("pairs need labels of both classes; one class is empty.")
    if n_pairs < 1:
        raise InvalidInputError(f"n_pairs must be at least 1; got {n_pairs}.")

    def draw(pool: torch.Tensor, count: int) -> torch.Tensor:
        return pool[torch.randint(len(pool), (count,), generator=generator)]

    pairable = [m for m in members if len(m) >= 2]
    n_different = n_pairs // 2 if pairable else n_pairs
    counts = [(n_pairs - n_different) // len(pairable) for _ in pairable]
    if counts:
        counts[-1] += n_pairs - n_different - sum(counts)
    firsts = [draw(members[0], n_different)]
    seconds = [draw(members[1], n_different)]
    for pool, count in zip(pairable, counts, strict=True):
        first = torch.randint(len(pool), (count,), generator=generator)
        # An offset in 1..len-1 picks another member: never the crop itself.
        offset = torch.randint(1, len(pool), (count,), generator=generator)
        firsts.append(pool[first])
        seconds.append(pool[(first + offset) % len(pool)])
    same = torch.cat([torch.zeros(n_different), torch.ones(n_pairs - n_different)])
    order = torch.randperm(n_pairs, generator=generator)
    return torch.cat(firsts)[order], torch.cat(seconds)[order], same[order]


def _views(
    crops: torch.Tensor, augment: Augmentation | None, generator: torch.Generator
) -> torch.Tensor:
    return network_input(crops if augment is None else augment(crops, generator))


def _optimise(
    module: nn.Module,
    steps: int,
    learning_rate: float,
    weight_decay: float,
    step_loss: Callable[[], torch.Tensor],
    callback: Progress | None,
    stage: str,
) -> list[float]:
    """Train ``module`` for ``steps`` AdamW steps (warm-up + cosine); return the losses."""
    optimizer = torch.optim.AdamW(module.parameters(), lr=learning_rate, weight_decay=weight_decay)
    warmup = max(1, round(_WARMUP_FRACTION * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps, warmup))
    module.train()
    losses = []
    with torch_threads():
        for step in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = step_loss()
            loss.backward()
            nn.utils.clip_grad_norm_(module.parameters(), max_norm=1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            if callback is not None and ((step + 1) % 10 == 0 or step + 1 == steps):
                details = {"loss": losses[-1]}
                callback(ProgressEvent(stage=stage, done=step + 1, total=steps, details=details))
    module.eval()
    return losses


def pretrain_encoder(
    encoder: nn.Module,
    crops: torch.Tensor,
    *,
    steps: int = 300,
    batch_size: int = 128,
    temperature: float = 0.2,
    learning_rate: float = 2e-3,
    weight_decay: float = 1e-4,
    augment: Augmentation = CONTRASTIVE_AUGMENTATION,
    generator: torch.Generator,
    callback: Progress | None = None,
) -> list[float]:
    """Self-supervised contrastive pre-training on unlabelled crops (in place).

    Each step draws ``batch_size`` crops, makes two augmented views of each and trains the
    encoder to match the views of the same crop among all others (:func:`nt_xent_loss`).

    Parameters
    ----------
    encoder : nn.Module
        Maps (B, C, H, W) normalised crops to unit-length (B, D) embeddings.
    crops : Tensor of shape (N, H, W) or (N, C, H, W)
        Raw unlabelled crops; at least 2.
    steps, batch_size, temperature, learning_rate, weight_decay
        The optimisation recipe (AdamW, 10% warm-up then cosine decay, clipping at 1).
    augment : Augmentation
        How the two views are drawn.
    generator : torch.Generator
        The only source of randomness.
    callback : callable, optional
        Called every 10 steps (and after the last) with a
        :class:`~blobsift.types.ProgressEvent`: stage ``"pretrain"``, ``done`` steps of
        ``total``, values ``{"loss"}``.

    Returns
    -------
    list of float
        The loss of every step.
    """
    if len(crops) < 2:
        raise InvalidInputError(
            f"pre-training needs at least 2 unlabelled crops; got {len(crops)}."
        )
    batch = min(batch_size, len(crops))

    def step_loss() -> torch.Tensor:
        index = torch.randperm(len(crops), generator=generator)[:batch]
        x = crops[index]
        return nt_xent_loss(
            encoder(_views(x, augment, generator)),
            encoder(_views(x, augment, generator)),
            temperature,
        )

    return _optimise(encoder, steps, learning_rate, weight_decay, step_loss, callback, "pretrain")


def finetune_head(
    encoder: CropEncoder,
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = 200,
    pairs_per_step: int = 64,
    margin: float = 1.0,
    learning_rate: float = 3e-3,
    weight_decay: float = 1e-3,
    generator: torch.Generator,
    callback: Progress | None = None,
) -> list[float]:
    """Train an encoder's head on class-balanced labelled pairs (in place; :func:`pair_loss`).

    The body stays frozen: its features of a few augmented views of every labelled crop
    are computed once, so each step costs a small matrix product instead of a pass
    through the convolutions, and a few dozen labels cannot overwrite what pre-training
    learnt from thousands of crops.

    Parameters
    ----------
    encoder : CropEncoder
        Its ``head`` is trained; ``embed_features`` maps body features to embeddings.
    features : Tensor of shape (N, V, F)
        Body features of V views (augmentations) of each labelled crop.
    labels : Tensor of shape (N,)
        Binary labels, both classes present.
    steps, pairs_per_step, margin, learning_rate, weight_decay
        The optimisation recipe.
    generator : torch.Generator
        The only source of randomness (pairs and views).
    callback : callable, optional
        Called every 10 steps (and after the last) with a
        :class:`~blobsift.types.ProgressEvent`: stage ``"finetune"``, ``done`` steps of
        ``total``, values ``{"loss"}``.

    Returns
    -------
    list of float
        The loss of every step.
    """
    if features.dim() != 3 or features.shape[0] != len(labels):
        raise InvalidInputError(
            f"features must have shape ({len(labels)}, views, F); got {tuple(features.shape)}."
        )
    n_views = features.shape[1]

    def step_loss() -> torch.Tensor:
        first, second, same = sample_pairs(labels, pairs_per_step, generator)
        views = torch.randint(n_views, (2, pairs_per_step), generator=generator)
        return pair_loss(
            encoder.embed_features(features[first, views[0]]),
            encoder.embed_features(features[second, views[1]]),
            same,
            margin,
        )

    return _optimise(
        encoder.head, steps, learning_rate, weight_decay, step_loss, callback, "finetune"
    )


@torch.no_grad()
def calibrate_batch_norm(model: nn.Module, crops: torch.Tensor, batch_size: int = 512) -> None:
    """Set every batch-norm layer's running statistics to those of ``crops`` (normalised).

    An encoder that was never trained keeps the default statistics (mean 0, variance 1),
    which leave its features unscaled; this makes them standardised on the data at hand.
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over all batches
    model.train()
    for start in range(0, len(crops), batch_size):
        model(network_input(crops[start : start + batch_size]))
    for layer in layers:
        layer.momentum = 0.1
    model.eval()
