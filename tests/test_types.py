import copy
import pickle

import numpy as np
import pandas as pd
import pytest

from blobsift.exceptions import InvalidInputError
from blobsift.io import read_candidates
from blobsift.types import Candidates


@pytest.fixture
def table():
    return Candidates(
        row=[10.25, 40.0, 3.0],
        col=[5.5, 7.125, 99.0],
        sigma=[1.5, np.nan, 2.0],
        score=[9.0, 4.5, 1 / 3],
    )


def test_columns_are_float_arrays(table):
    assert len(table) == 3
    for name in ("row", "col", "sigma", "score"):
        column = getattr(table, name)
        assert isinstance(column, np.ndarray)
        assert column.dtype == np.float64
        assert column.shape == (3,)
    assert table.image is None
    assert table.columns == ["row", "col", "sigma", "score"]
    np.testing.assert_array_equal(table.positions, [[10.25, 5.5], [40.0, 7.125], [3.0, 99.0]])


def test_optional_columns_default_to_nan():
    c = Candidates(row=[1, 2], col=[3, 4])
    assert np.isnan(c.sigma).all()
    assert np.isnan(c.score).all()


def test_is_immutable(table):
    with pytest.raises(AttributeError):
        table.row = np.zeros(3)
    with pytest.raises(ValueError, match="read-only"):
        table.row[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        table.score[:] = 0.0


def test_pickle_and_copy_round_trip(table):
    named = table.with_image("a.tif")
    for original in (table, named):
        assert pickle.loads(pickle.dumps(original)).equals(original)
        assert copy.deepcopy(original).equals(original)


def test_input_arrays_are_copied():
    rows = np.array([1.0, 2.0])
    c = Candidates(row=rows, col=[0.0, 0.0])
    rows[0] = 100.0
    assert c.row[0] == 1.0


def test_bad_columns_raise():
    with pytest.raises(InvalidInputError, match="same length"):
        Candidates(row=[1, 2], col=[1])
    with pytest.raises(InvalidInputError, match="finite"):
        Candidates(row=[1, np.nan], col=[1, 2])
    with pytest.raises(InvalidInputError, match="one-dimensional"):
        Candidates(row=np.zeros((2, 2)), col=np.zeros((2, 2)))
    with pytest.raises(InvalidInputError, match="numbers"):
        Candidates(row=["a"], col=[1])
    with pytest.raises(InvalidInputError, match="image"):
        Candidates(row=[1, 2], col=[1, 2], image=["a.tif"])


def test_empty():
    empty = Candidates.empty()
    assert len(empty) == 0
    assert empty.to_pandas().shape == (0, 4)
    assert Candidates.empty(with_image=True).columns[0] == "image"


def test_indexing_returns_candidates(table):
    top = table[table.score > 4]
    assert isinstance(top, Candidates)
    np.testing.assert_array_equal(top.row, [10.25, 40.0])
    assert len(table[1:]) == 2
    assert table[2].col.tolist() == [99.0]
    with pytest.raises(InvalidInputError, match="mask"):
        table[np.array([True, False])]


def test_sort_by_score_puts_nan_last():
    c = Candidates(row=[0, 1, 2, 3], col=[0, 0, 0, 0], score=[1.0, np.nan, 5.0, 1.0])
    assert c.sort_by_score().row.tolist() == [2, 0, 3, 1]


def test_to_pandas_and_back(table):
    frame = table.to_pandas()
    assert list(frame.columns) == ["row", "col", "sigma", "score"]
    assert all(frame.dtypes == np.float64)
    assert Candidates.from_pandas(frame).equals(table)
    named = table.with_image("a.tif").to_pandas()
    assert list(named.columns) == ["image", "row", "col", "sigma", "score"]
    assert Candidates.from_pandas(named).equals(table.with_image("a.tif"))


def test_equals_checks_every_column(table):
    assert table.equals(table[:])
    assert not table.equals(table[:2])
    assert not table.equals(table.with_image("a"))
    other = Candidates(table.row, table.col, table.sigma, table.score + 1)
    assert not table.equals(other)


def test_csv_round_trip_is_exact(tmp_path, table):
    path = table.to_csv(tmp_path / "c.csv")
    back = read_candidates(path)
    assert back.equals(table)
    with_image = table.with_image("dir/img 1.tif")
    assert read_candidates(with_image.to_csv(tmp_path / "d.csv")).equals(with_image)


def test_csv_round_trip_of_an_empty_table(tmp_path):
    back = read_candidates(Candidates.empty().to_csv(tmp_path / "e.csv"))
    assert len(back) == 0


def test_read_candidates_from_another_detector(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("id,col,image,row,flux\n0,5.5,a.tif,1.25,100\n1,7,b.tif,2,50\n")
    c = read_candidates(path)
    assert c.image.tolist() == ["a.tif", "b.tif"]
    assert c.row.tolist() == [1.25, 2.0]
    assert c.col.tolist() == [5.5, 7.0]
    assert np.isnan(c.sigma).all()
    assert np.isnan(c.score).all()


def test_read_candidates_numeric_image_names_stay_strings(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("image,row,col,score\n001,1,2,0.5\n002,3,4,0.25\n")
    c = read_candidates(path)
    assert c.image.tolist() == ["001", "002"]
    assert c.score.tolist() == [0.5, 0.25]


def test_read_candidates_renames_and_sets_image(tmp_path):
    path = tmp_path / "xy.tsv"
    path.write_text("x\ty\n3.5\t1.5\n")
    with pytest.raises(InvalidInputError, match=r'columns=\{"y": "row", "x": "col"\}'):
        read_candidates(path)
    c = read_candidates(path, columns={"y": "row", "x": "col"}, image="one.tif")
    assert (c.row.tolist(), c.col.tolist(), c.image.tolist()) == ([1.5], [3.5], ["one.tif"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("row,col\n1,abc\n", "numbers"),
        ("row,col\n1,\n", "finite"),
        ("image,row,col\n,1,2\n", "image"),
        ("a,b\n1,2\n", "'row' and 'col'"),
    ],
)
def test_read_candidates_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=message) as info:
        read_candidates(path)
    assert "bad.csv" in str(info.value)


def test_read_candidates_missing_file(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_candidates(tmp_path / "nope.csv")


def test_concat_keeps_order_and_images(table):
    joined = Candidates.concat([table, table[:1]], images=["a.tif", "b.tif"])
    assert len(joined) == 4
    assert joined.image.tolist() == ["a.tif"] * 3 + ["b.tif"]
    np.testing.assert_array_equal(joined.row, np.concatenate([table.row, table.row[:1]]))
    plain = Candidates.concat([table, table])
    assert plain.image is None
    assert len(plain) == 6
    assert len(Candidates.concat([])) == 0


def test_concat_rejects_mixed_image_columns(table):
    with pytest.raises(InvalidInputError, match="with_image"):
        Candidates.concat([table, table.with_image("a.tif")])
    with pytest.raises(InvalidInputError, match="one image per part"):
        Candidates.concat([table], images=["a", "b"])
    with pytest.raises(InvalidInputError, match="item 1"):
        Candidates.concat([table, pd.DataFrame()])
