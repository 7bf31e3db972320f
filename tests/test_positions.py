import numpy as np

from blobsift.positions import PositionIndex, close_pairs, nearest_within


def test_nearest_within_takes_the_nearest_inside_the_radius_only():
    points = np.array([[10.0, 10.0], [10.0, 12.5], [30.0, 30.0]])
    assert nearest_within(points, 10.0, 11.0, 2.0) == 0
    assert nearest_within(points, 10.0, 12.0, 2.0) == 1
    assert nearest_within(points, 20.0, 20.0, 2.0) is None
    assert nearest_within(np.empty((0, 2)), 1.0, 1.0, 5.0) is None


def test_close_pairs_stay_within_one_group_and_are_ordered():
    positions = np.array([[0.0, 0.0], [0.0, 1.5], [50.0, 50.0], [0.0, 1.0], [0.0, 0.5]])
    groups = np.array([1, 1, 1, 2, 2])
    pairs = close_pairs(positions, groups, 2.0)
    # (0, 1) in image 1; (3, 4) in image 2; 0 and 4 are 0.5 apart but in other images.
    assert pairs.tolist() == [[0, 1], [3, 4]]
    assert close_pairs(positions, groups, 0.1).shape == (0, 2)


def test_position_index_finds_the_nearest_added_position_within_its_radius():
    index = PositionIndex(2.0)
    index.add(5.0, 5.0)
    index.add(5.0, 6.5)
    assert index.nearest(5.0, 6.0) == (5.0, 6.5)
    assert index.nearest(9.0, 9.0) is None
