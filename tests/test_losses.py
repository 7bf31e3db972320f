import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from blobsift import FocalLoss, InvalidInputError


def _batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(n, 1, generator=g)
    targets = (torch.rand(n, 1, generator=g) < 0.3).float()
    return logits, targets


def test_gamma_zero_alpha_half_is_half_bce():
    logits, targets = _batch()
    expected = 0.5 * F.binary_cross_entropy_with_logits(logits, targets)
    assert torch.allclose(FocalLoss(alpha=0.5, gamma=0.0)(logits, targets), expected, atol=1e-7)


def test_matches_the_paper_formula():
    logits, targets = _batch()
    p = torch.sigmoid(logits)
    p_t = torch.where(targets == 1, p, 1 - p)
    alpha_t = torch.where(targets == 1, 0.25, 0.75)
    expected = (-alpha_t * (1 - p_t) ** 2 * torch.log(p_t)).mean()
    assert torch.allclose(FocalLoss()(logits, targets), expected, atol=1e-6)


def test_easy_examples_are_down_weighted():
    confident = torch.tensor([[6.0]])
    unsure = torch.tensor([[0.1]])
    target = torch.ones(1, 1)
    loss = FocalLoss(alpha=None, gamma=2.0)
    bce = FocalLoss(alpha=None, gamma=0.0)
    ratio_easy = loss(confident, target) / bce(confident, target)
    ratio_hard = loss(unsure, target) / bce(unsure, target)
    assert ratio_easy < 1e-4 < ratio_hard


def test_alpha_weights_the_positive_class():
    logit = torch.zeros(1, 1)
    pos, neg = torch.ones(1, 1), torch.zeros(1, 1)
    loss = FocalLoss(alpha=0.75, gamma=2.0)
    assert torch.isclose(loss(logit, pos), 3 * loss(logit, neg))


def test_flat_and_column_shapes_agree():
    logits, targets = _batch()
    loss = FocalLoss()
    assert torch.isclose(loss(logits, targets), loss(logits.view(-1), targets.view(-1)))


def test_mismatched_sizes_raise_instead_of_broadcasting():
    with pytest.raises(ValueError, match="same number"):
        FocalLoss()(torch.zeros(4, 1), torch.zeros(5))


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_finite_loss_and_gradient_for_extreme_logits(gamma):
    logits = torch.tensor([-200.0, -30.0, 0.0, 30.0, 200.0], requires_grad=True)
    targets = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    loss = FocalLoss(gamma=gamma)(logits, targets)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize(("alpha", "gamma"), [(-0.1, 2.0), (1.5, 2.0), (0.25, -1.0)])
def test_invalid_parameters_are_refused(alpha, gamma):
    with pytest.raises(InvalidInputError):
        FocalLoss(alpha=alpha, gamma=gamma)
