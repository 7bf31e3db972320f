import numpy as np
import pandas as pd
import pytest

from blobsift.active import (
    crop_descriptors,
    disagreement,
    likely_mislabels,
    rank,
    rank_by_score,
    rank_random,
    rank_useful,
)
from blobsift.app.pool import CandidatePool
from blobsift.exceptions import InvalidInputError
from blobsift.simulate import simulate_crops
from blobsift.types import Label

UNLABELLED = Label.UNLABELLED


def distinct(n: int, seed: int = 0) -> np.ndarray:
    """Descriptors far from each other (random directions in 64 dimensions)."""
    return np.random.default_rng(seed).normal(size=(n, 64))


def test_without_a_model_detector_score_leads():
    score = np.array([1.0, 9.0, 5.0, 7.0, np.nan, 3.0])
    chosen = rank_useful(distinct(6), np.ones(6, bool), 6, detector_score=score,
                         diversity_weight=0.0)  # fmt: skip
    assert chosen.tolist() == [1, 3, 2, 5, 0, 4]


def test_near_the_threshold_and_likely_positives_come_first():
    proba = np.array([0.02, 0.30, 0.97, 0.01, 0.65, 0.99])
    chosen = rank_useful(distinct(6), np.ones(6, bool), 6, proba=proba, threshold=0.3,
                         diversity_weight=0.0)  # fmt: skip
    assert chosen[0] == 1  # at the threshold
    assert chosen[1] == 4  # uncertain and likely positive
    # confident positives before confident negatives: positives are rare and teach more
    assert set(chosen[2:4]) == {2, 5}
    assert set(chosen[4:]) == {0, 3}


def test_near_duplicates_of_labelled_or_chosen_crops_wait():
    base = distinct(4)
    descriptors = np.vstack([base, base[0] + 0.01, base[1] + 0.01])  # 4 ~ 0, 5 ~ 1
    score = np.array([10.0, 1.0, 2.0, 3.0, 9.0, 8.0])
    available = np.array([False, True, True, True, True, True])
    anchors = ~available  # candidate 0 is labelled
    plain = rank_useful(descriptors, available, 5, detector_score=score, diversity_weight=0.0)
    assert plain.tolist() == [4, 5, 3, 2, 1]
    chosen = rank_useful(descriptors, available, 5, detector_score=score, anchors=anchors)
    assert chosen[:2].tolist() == [5, 3]  # 4, a copy of the labelled crop 0, waits
    assert chosen[-1] == 1  # a copy of 5, chosen first, waits longest


def test_useful_order_is_deterministic_and_only_offers_available_crops():
    rng = np.random.default_rng(3)
    descriptors, proba = rng.normal(size=(300, 64)), rng.uniform(size=300)
    available = rng.uniform(size=300) > 0.4
    first = rank_useful(descriptors, available, 25, proba=proba, threshold=0.4, seed=7)
    again = rank_useful(descriptors, available, 25, proba=proba, threshold=0.4, seed=7)
    assert first.tolist() == again.tolist()
    assert len(set(first.tolist())) == 25
    assert available[first].all()
    few = np.zeros(300, bool)
    few[[5, 9]] = True
    assert sorted(rank_useful(descriptors, few, 10, proba=proba).tolist()) == [5, 9]
    assert rank_useful(descriptors, np.zeros(300, bool), 10).size == 0


def test_random_order_stays_put_as_labels_arrive():
    available = np.ones(50, bool)
    order = rank_random(available, 10, seed=1)
    available[order[0]] = False
    assert rank_random(available, 9, seed=1).tolist() == order[1:].tolist()
    assert rank_random(np.ones(50, bool), 10, seed=2).tolist() != order.tolist()


def test_score_order_puts_unknown_scores_last():
    score = np.array([2.0, np.nan, 5.0, 1.0])
    assert rank_by_score(np.ones(4, bool), 4, score).tolist() == [2, 0, 3, 1]
    assert rank_by_score(np.array([1, 1, 0, 1], bool), 4, score).tolist() == [0, 3, 1]


def test_rank_dispatches_and_refuses_unknown_orders():
    score = np.array([2.0, 5.0, 1.0])
    common = {"descriptors": distinct(3), "detector_score": score}
    assert rank("score", np.ones(3, bool), 3, **common).tolist() == [1, 0, 2]
    with pytest.raises(InvalidInputError, match="queue order"):
        rank("sideways", np.ones(3, bool), 3, **common)


def test_descriptors_ignore_gain_and_offset_and_separate_kinds():
    data = simulate_crops(40, seed=5)
    described = crop_descriptors(data.crops)
    assert described.shape == (40, 64)
    rescaled = crop_descriptors(data.crops * 7.5 + 300.0)
    np.testing.assert_allclose(rescaled, described, atol=1e-3)
    assert crop_descriptors(data.crops[:0]).shape == (0, 64)


def test_disagreement_measures_confident_contradiction():
    labels = np.array([1, 1, 0, 0, 1, 0])
    proba = np.array([0.9, 0.0, 0.1, 1.0, 0.2, 0.7])
    np.testing.assert_allclose(
        disagreement(labels, proba, threshold=0.4), [0.0, 1.0, 0.0, 1.0, 0.5, 0.5]
    )


def test_likely_mislabels_list_confident_disagreements_first():
    labels = np.array([1, 1, 0, 0, 1, 0])
    proba = np.array([0.9, 0.0, 0.1, 1.0, 0.25, 0.75])
    index, score = likely_mislabels(labels, proba, 0.5, limit=10)
    assert index.tolist() == [1, 3, 4, 5]  # ties keep their order
    np.testing.assert_allclose(score, [1.0, 1.0, 0.5, 0.5])
    assert likely_mislabels(labels, proba, 0.5, limit=1)[0].tolist() == [1]
    assert likely_mislabels(labels, proba, 0.5, limit=10, min_disagreement=0.9)[0].size == 2


def test_candidates_closer_than_the_match_radius_are_offered_once():
    table = pd.DataFrame(
        {
            "image_id": [1, 1, 1, 2, 2],
            "image": ["a", "a", "a", "b", "b"],
            "row": [10.0, 11.5, 30.0, 10.0, 40.0],
            "col": [10.0, 10.0, 30.0, 10.0, 40.0],
            "sigma": 1.0,
            "score": 5.0,
            "label": UNLABELLED,
        }
    )
    pool = CandidatePool(table, np.zeros((5, 64)), images=None, match_radius=2.0)
    assert pool.ids == ["1-0", "1-1", "1-2", "2-0", "2-1"]
    unlabelled = np.full(5, UNLABELLED)
    assert pool.open_for_labels(unlabelled).tolist() == [True, False, True, True, True]
    stored = pd.DataFrame({"image_id": [1], "row": [11.4], "col": [10.1], "label": [0]})
    labels = pool.labels_from(stored)  # the nearest candidate takes a stored label
    assert labels.tolist() == [UNLABELLED, 0, UNLABELLED, UNLABELLED, UNLABELLED]
    # a label on either member closes the pair
    assert pool.open_for_labels(labels).tolist() == [False, False, True, True, True]
    assert pool.find(1, 11.0, 10.4) == 1
    assert pool.find(2, 20.0, 20.0) is None
    with pytest.raises(InvalidInputError, match="no candidate '3-0'"):
        pool.index("3-0")


def test_pool_scores_image_by_image_through_the_one_scoring_step():
    from blobsift.scoring import score_candidates

    rng = np.random.default_rng(0)
    pixels = {7: rng.normal(size=(80, 90)), 9: rng.normal(size=(70, 70))}
    table = pd.DataFrame(
        {
            "image_id": [9, 7, 9, 7],
            "image": ["b", "a", "b", "a"],
            "row": [10.0, 20.0, 50.0, 60.0],
            "col": [10.0, 30.0, 40.0, 70.0],
            "sigma": 1.0,
            "score": 5.0,
        }
    )

    class Brightness:
        def predict_proba(self, crops):
            p = 1.0 / (1.0 + np.exp(-crops[:, 32, 32]))
            return np.column_stack([1.0 - p, p])

    pool = CandidatePool(table, np.zeros((4, 64)), images=pixels.__getitem__, match_radius=2.0)
    events = []
    proba = pool.score_all(Brightness(), progress=events.append)
    for image_id, part in table.groupby("image_id"):
        expected = score_candidates(pixels[image_id], part, Brightness())
        np.testing.assert_allclose(proba[part.index], expected)
    assert [(e.stage, e.done, e.total, e.item) for e in events] == [
        ("score", 1, 2, "a"),
        ("score", 2, 2, "b"),
    ]
