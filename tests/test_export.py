"""``blobsift export``: each format read back by the library (or the schema) that owns it."""

import csv
import json
import os
import re
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import roifile
from astropy.io import fits as astropy_fits
from astropy.wcs import WCS
from regions import CirclePixelRegion, CircleSkyRegion, Regions

from blobsift.cli import main
from blobsift.exceptions import InvalidInputError, ProjectError
from blobsift.export import CLASS_NAMES, EXTENSIONS, FORMATS, export_points, export_project
from blobsift.io import read_wcs
from blobsift.project import Project
from blobsift.simulate import simulate_image, truth_labels
from project_helpers import SHAPE, objects_of, write_images

SQRT2 = np.sqrt(2.0)


def sky_header(shape, *, crpix=(48.5, 48.5), crval=(150.0, 2.0), cdelt=(-2e-4, 2e-4)):
    """A plain RA---TAN/DEC--TAN header: RA falls with x (columns), Dec grows with y (rows)."""
    header = astropy_fits.Header()
    header.update(
        NAXIS=2, NAXIS1=shape[1], NAXIS2=shape[0], CTYPE1="RA---TAN", CTYPE2="DEC--TAN",
        CRPIX1=crpix[0], CRPIX2=crpix[1], CRVAL1=crval[0], CRVAL2=crval[1],
        CDELT1=cdelt[0], CDELT2=cdelt[1], CUNIT1="deg", CUNIT2="deg", RADESYS="ICRS",
    )  # fmt: skip
    return header


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Two TIFF images and one FITS image with a WCS: detected, labelled, trained, predicted."""
    root = tmp_path_factory.mktemp("export")
    images = write_images(root / "data", 2, seed=0)
    sky = simulate_image(shape=SHAPE, n_spots=14, decoys_per_spot=1.5, seed=7)
    fits_path = root / "data" / "sky.fits"
    astropy_fits.PrimaryHDU(sky.image.astype(np.float32), header=sky_header(SHAPE)).writeto(
        fits_path
    )
    with Project.create(root / "run") as project:
        project.add_images([*images, fits_path])
        project.detect(threshold=4.5)
        candidates = project.candidates()
        objects = {**objects_of(2, seed=0), "sky.fits": sky.objects}
        labels = truth_labels(candidates, objects)
        labels[0] = -1  # one unsure label
        keep = np.arange(len(candidates)) % 4 != 3  # a quarter stays unlabelled
        project.add_labels(
            candidates["image"][keep], candidates["row"][keep], candidates["col"][keep],
            labels[keep].tolist(), who="test",
        )  # fmt: skip
        project.train(phase="siamese", pretrain=False, siamese__finetune_steps=20)
        predicted = project.predict()
        predictions = project.predictions()
        labelled = project.labels()
        candidates = project.candidates(with_labels=True)
    return SimpleNamespace(
        root=root,
        project=root / "run",
        images=images,
        fits=fits_path,
        predictions=predictions,
        predicted=predicted,
        labels=labelled,
        candidates=candidates,
    )


def export(exported, fmt, what="predictions", name=None):
    """Export with the command line; returns the file of image ``name`` (default img0)."""
    folder = exported.root / f"{what}-{fmt}"
    assert main(["export", str(exported.project), "--format", fmt, "--what", what,
                 "--output", str(folder), "--quiet"]) == 0  # fmt: skip
    return folder / f"{name or 'img0'}{EXTENSIONS[fmt]}"


def rows_of(table, image="img0.tif"):
    return table[table["image"] == image].reset_index(drop=True)


def test_predictions_are_those_recorded_and_span_every_image(exported):
    columns = ["image", "row", "col", "sigma", "score", "probability", "decision"]
    pd.testing.assert_frame_equal(
        exported.predictions[columns], exported.predicted[columns], check_dtype=False
    )
    with Project(exported.project) as project:
        assert len(project.prediction_runs()) == 1
        assert len(exported.predictions) == len(project.candidates())
        with pytest.raises(ProjectError, match="no prediction run 99"):
            project.predictions(99)
    assert set(exported.predictions["image"]) == {"img0.tif", "img1.tif", "sky.fits"}
    assert set(exported.predictions["decision"]) <= {0, 1}


# -- napari -----------------------------------------------------------------------------
def test_napari_csv_has_napari_points_layout(exported):
    path = export(exported, "napari")
    with open(path, newline="") as handle:
        header = next(csv.reader(handle))
    assert header[:3] == ["index", "axis-0", "axis-1"]
    table = pd.read_csv(path)
    expected = rows_of(exported.predictions)
    assert (table["index"] == np.arange(len(expected))).all()
    np.testing.assert_array_equal(table["axis-0"], expected["row"])
    np.testing.assert_array_equal(table["axis-1"], expected["col"])
    np.testing.assert_allclose(table["probability"], expected["probability"])
    assert list(table["class"]) == [CLASS_NAMES[d] for d in expected["decision"]]
    assert "ra" not in table  # a TIFF has no WCS


def napari_reader():
    """napari's builtin reader; missing napari skips here, and fails under CI."""
    try:
        import napari_builtins.io as io
    except ImportError as error:
        reason = f"napari is not installed ({error}); pip install 'blobsift[napari]'"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{reason}; under CI the napari reader test must run, not skip.")
        pytest.skip(reason)
    return io


def test_napari_reader_opens_the_points_with_their_features(exported):
    io = napari_reader()
    path = export(exported, "napari")
    expected = rows_of(exported.predictions)
    data, meta, layer_type = io.csv_to_layer_data(str(path))
    assert layer_type == "points"
    np.testing.assert_array_equal(data, expected[["row", "col"]].to_numpy())
    np.testing.assert_allclose(meta["properties"]["probability"], expected["probability"])
    np.testing.assert_array_equal(meta["properties"]["decision"], expected["decision"])


# -- TrackMate --------------------------------------------------------------------------
#: TrackMate's fiji.plugin.trackmate.Dimension values.
DIMENSIONS = {"NONE", "QUALITY", "INTENSITY", "INTENSITY_SQUARED", "POSITION", "VELOCITY",
              "LENGTH", "AREA", "VOLUME", "TIME", "ANGLE", "RATE", "ANGLE_RATE",
              "STRING"}  # fmt: skip
#: What Java's Double.valueOf reads (TmXmlReader reads every spot attribute with it).
JAVA_DOUBLE = re.compile(r"^-?(\d+(\.\d*)?([eE][-+]?\d+)?|NaN|Infinity)$")


def test_trackmate_xml_has_what_tmxmlreader_reads(exported):
    path = export(exported, "trackmate")
    root = ET.parse(path).getroot()
    assert root.tag == "TrackMate"
    assert root.get("version")
    model = root.find("Model")
    assert (model.get("spatialunits"), model.get("timeunits")) == ("pixel", "frame")
    declared = {}
    for feature in model.findall("FeatureDeclarations/SpotFeatures/Feature"):
        assert feature.get("name")
        assert feature.get("shortname")
        assert feature.get("dimension") in DIMENSIONS
        assert feature.get("isint") in ("true", "false")
        declared[feature.get("feature")] = feature.get("isint") == "true"
    for name in ("EdgeFeatures", "TrackFeatures"):
        assert model.find(f"FeatureDeclarations/{name}") is not None
    # elements TmXmlReader dereferences without a null check
    for name in ("AllSpots", "AllTracks", "FilteredTracks"):
        assert model.find(name) is not None
    settings = root.find("Settings")
    for name in ("InitialSpotFilter", "SpotFilterCollection", "TrackFilterCollection",
                 "AnalyzerCollection/SpotAnalyzers", "BasicSettings"):  # fmt: skip
        assert settings.find(name) is not None, name
    assert settings.find("DetectorSettings").get("DETECTOR_NAME") == "MANUAL_DETECTOR"
    assert JAVA_DOUBLE.match(settings.find("DetectorSettings").get("RADIUS"))
    assert settings.find("TrackerSettings").get("TRACKER_NAME") == "MANUAL_TRACKER"
    image = settings.find("ImageData")
    assert os.path.join(image.get("folder"), image.get("filename")) == str(exported.images[0])
    assert (int(image.get("height")), int(image.get("width"))) == SHAPE

    spots = model.findall("AllSpots/SpotsInFrame/Spot")
    assert int(model.find("AllSpots").get("nspots")) == len(spots)
    assert model.find("AllSpots/SpotsInFrame").get("frame") == "0"
    ids = [int(spot.get("ID")) for spot in spots]
    assert len(set(ids)) == len(ids)
    for spot in spots:
        for key, value in spot.attrib.items():
            if key not in ("ID", "name"):
                assert key in declared, key
                assert JAVA_DOUBLE.match(value), (key, value)
    expected = rows_of(exported.predictions)
    np.testing.assert_array_equal([float(s.get("POSITION_X")) for s in spots], expected["col"])
    np.testing.assert_array_equal([float(s.get("POSITION_Y")) for s in spots], expected["row"])
    np.testing.assert_allclose([float(s.get("RADIUS")) for s in spots], expected["sigma"] * SQRT2)
    np.testing.assert_allclose([float(s.get("QUALITY")) for s in spots], expected["score"])
    assert [int(s.get("DECISION")) for s in spots] == expected["decision"].tolist()


# -- QuPath -----------------------------------------------------------------------------
def test_qupath_geojson_points_with_a_classification_each(exported):
    path = export(exported, "qupath")
    document = json.loads(path.read_text())
    assert document["type"] == "FeatureCollection"
    features = document["features"]
    expected = rows_of(exported.predictions)
    assert len(features) == len(expected)
    assert len({f["id"] for f in features}) == len(features)
    for feature, (_, row) in zip(features, expected.iterrows(), strict=True):
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] == "Point"
        x, y = feature["geometry"]["coordinates"]
        assert (x, y) == (row["col"] + 0.5, row["row"] + 0.5)  # pixel centres at .5
        properties = feature["properties"]
        assert properties["objectType"] == "detection"
        classification = properties["classification"]
        assert classification["name"] == CLASS_NAMES[row["decision"]]
        assert len(classification["color"]) == 3
        assert all(0 <= c <= 255 for c in classification["color"])
        assert properties["measurements"]["probability"] == pytest.approx(row["probability"])


def test_candidates_carry_their_labels_and_unlabelled_ones_say_so(exported):
    path = export(exported, "qupath", what="candidates")
    names = [f["properties"]["classification"]["name"] for f in json.loads(path.read_text())
             ["features"]]  # fmt: skip
    expected = rows_of(exported.candidates)
    assert names == [CLASS_NAMES[label] for label in expected["label"]]
    assert {"unlabelled", "unsure"} <= set(names)  # the fixture left both kinds


# -- DS9 --------------------------------------------------------------------------------
def test_ds9_regions_read_back_by_regions(exported):
    path = export(exported, "ds9")
    shapes = Regions.read(str(path), format="ds9")
    expected = rows_of(exported.predictions)
    assert len(shapes) == len(expected)
    assert all(isinstance(shape, CirclePixelRegion) for shape in shapes)
    np.testing.assert_allclose([s.center.x for s in shapes], expected["col"], atol=1e-6)
    np.testing.assert_allclose([s.center.y for s in shapes], expected["row"], atol=1e-6)
    np.testing.assert_allclose([s.radius for s in shapes], expected["sigma"] * SQRT2, atol=1e-6)
    tags = [shape.meta["tag"] for shape in shapes]
    assert tags == [[CLASS_NAMES[d]] for d in expected["decision"]]


def test_ds9_image_coordinates_are_one_based(tmp_path):
    table = pd.DataFrame({"row": [5.0], "col": [3.0], "sigma": [2.0], "label": [1]})
    text = export_points(table, tmp_path / "one.reg", "ds9").read_text()
    x, y, radius = map(float, re.search(r"circle\(([^,]+),([^,]+),([^)]+)\)", text).groups())
    assert (x, y) == (4.0, 6.0)  # DS9 x = col + 1, y = row + 1
    assert radius == pytest.approx(2 * SQRT2)
    assert "tag={signal}" in text


# -- ImageJ ROIs ------------------------------------------------------------------------
def test_imagej_rois_read_back_by_roifile(exported):
    path = export(exported, "imagej-roi", what="labels")
    rois = roifile.roiread(path)
    expected = rows_of(exported.labels)
    assert len(rois) == len(expected)
    points = np.array([roi.coordinates()[0] for roi in rois])
    np.testing.assert_allclose(points[:, 0], expected["col"] + 0.5, atol=1e-4)
    np.testing.assert_allclose(points[:, 1], expected["row"] + 0.5, atol=1e-4)
    assert [roi.name.split("-", 1)[1] for roi in rois] == [
        CLASS_NAMES[label] for label in expected["label"]
    ]
    assert all(roi.roitype == roifile.ROI_TYPE.POINT for roi in rois)


# -- FITS with a WCS --------------------------------------------------------------------
def test_fits_images_get_ra_dec_in_every_table_and_sky_regions(exported):
    wcs = WCS(astropy_fits.getheader(exported.fits))
    expected = rows_of(exported.predictions, "sky.fits")
    ra, dec = wcs.all_pix2world(expected["col"], expected["row"], 0)  # x = col, 0-based
    napari = pd.read_csv(export(exported, "napari", name="sky"))
    np.testing.assert_allclose(napari["ra"], ra, atol=1e-9)
    np.testing.assert_allclose(napari["dec"], dec, atol=1e-9)
    qupath = json.loads(export(exported, "qupath", name="sky").read_text())["features"]
    np.testing.assert_allclose([f["properties"]["measurements"]["ra"] for f in qupath], ra)
    spots = ET.parse(export(exported, "trackmate", name="sky")).getroot().iter("Spot")
    np.testing.assert_allclose([float(s.get("DEC")) for s in spots], dec)
    shapes = Regions.read(str(export(exported, "ds9", name="sky")), format="ds9")
    assert all(isinstance(shape, CircleSkyRegion) for shape in shapes)
    np.testing.assert_allclose([s.center.icrs.ra.deg for s in shapes], ra, atol=1e-6)
    np.testing.assert_allclose([s.center.icrs.dec.deg for s in shapes], dec, atol=1e-6)
    scale = 2e-4 * 3600  # arcsec per pixel
    np.testing.assert_allclose(
        [s.radius.to_value("arcsec") for s in shapes], expected["sigma"] * SQRT2 * scale, rtol=1e-3
    )


def test_ra_dec_follow_columns_as_x_and_rows_as_y_zero_based(tmp_path):
    # Reference pixel at FITS pixel (1, 1), which is blobsift's (row 0, col 0).
    wcs = WCS(sky_header((50, 50), crpix=(1, 1), crval=(150.0, 0.0), cdelt=(-1e-3, 1e-3)))
    table = pd.DataFrame({"row": [0.0, 0.0, 10.0], "col": [0.0, 10.0, 0.0]})
    frame = pd.read_csv(export_points(table, tmp_path / "p.csv", "napari", wcs=wcs))
    assert frame["ra"][0] == pytest.approx(150.0)
    assert frame["dec"][0] == pytest.approx(0.0)
    assert frame["ra"][1] == pytest.approx(149.99, abs=1e-6)  # 10 columns east: RA falls
    assert frame["dec"][1] == pytest.approx(0.0, abs=1e-6)
    assert frame["ra"][2] == pytest.approx(150.0, abs=1e-6)  # 10 rows north: Dec grows
    assert frame["dec"][2] == pytest.approx(0.01, abs=1e-6)


def test_read_wcs_is_none_without_a_celestial_wcs(exported):
    assert read_wcs(exported.images[0]) is None
    assert read_wcs(exported.fits).pixel_n_dim == 2


# -- the command line and its errors ----------------------------------------------------
def test_one_file_for_one_image_and_an_error_for_several(exported, capsys):
    single = exported.root / "one" / "img1.geojson"
    capsys.readouterr()
    argv = ["export", str(exported.project), "--format", "qupath", "--what", "labels"]
    assert main([*argv, "--image", "img1.tif", "--output", str(single), "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == [str(single)]
    assert len(json.loads(single.read_text())["features"]) == len(
        rows_of(exported.labels, "img1.tif")
    )
    wrong = exported.root / "one" / "all.geojson"
    assert main([*argv, "--output", str(wrong), "--quiet"]) == 2
    assert "3 images" in capsys.readouterr().err
    assert not wrong.exists()


def test_default_output_folder_is_inside_the_project(exported, capsys):
    capsys.readouterr()
    assert main(["export", str(exported.project), "--format", "ds9", "--json", "--quiet"]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    folder = exported.project / "exports" / "predictions-ds9"
    assert sorted(files) == sorted(str(folder / n) for n in ("img0.reg", "img1.reg", "sky.reg"))


def test_predictions_export_before_any_prediction_says_what_to_run(tmp_path):
    images = write_images(tmp_path / "data", 1, seed=1)
    with Project.create(tmp_path / "p") as project:
        project.add_images(images)
        with pytest.raises(ProjectError, match="blobsift predict"):
            export_project(project, tmp_path / "out", format="napari")
        with pytest.raises(InvalidInputError, match="format must be one of"):
            export_project(project, tmp_path / "out", format="shapefile", what="labels")
        with pytest.raises(InvalidInputError, match="what must be one of"):
            export_project(project, tmp_path / "out", format="napari", what="crops")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pd.DataFrame({"row": [1.0]}), "lacks column"),
        (pd.DataFrame({"row": [np.nan], "col": [1.0]}), "finite"),
        (pd.DataFrame({"row": [1.0], "col": [1.0], "label": [7]}), "label must hold"),
        (np.zeros((3, 2)), "DataFrame"),
    ],
)
def test_bad_tables_raise_and_write_nothing(tmp_path, table, message):
    with pytest.raises(InvalidInputError, match=message):
        export_points(table, tmp_path / "out.geojson", "qupath")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    import blobsift.export as module

    def fail(points, target, image):
        with open(target, "w") as handle:
            handle.write("half")
        raise OSError("disk full")

    monkeypatch.setitem(module._WRITERS, "napari", fail)
    with pytest.raises(OSError, match="disk full"):
        export_points(pd.DataFrame({"row": [1.0], "col": [2.0]}), tmp_path / "p.csv", "napari")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_points_give_an_empty_file_its_reader_accepts(tmp_path, fmt):
    empty = pd.DataFrame({"row": [], "col": [], "sigma": [], "label": []})
    path = export_points(empty, tmp_path / f"none{EXTENSIONS[fmt]}", fmt, image_shape=SHAPE)
    if fmt == "napari":
        assert pd.read_csv(path).columns[:3].tolist() == ["index", "axis-0", "axis-1"]
        assert len(pd.read_csv(path)) == 0
    elif fmt == "trackmate":
        assert ET.parse(path).getroot().find("Model/AllSpots").get("nspots") == "0"
    elif fmt == "qupath":
        assert json.loads(path.read_text()) == {"type": "FeatureCollection", "features": []}
    elif fmt == "ds9":
        assert len(Regions.read(str(path), format="ds9")) == 0
    else:
        assert roifile.roiread(path) == []


def test_export_has_help_with_examples(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["export", "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "blobsift export " in out
    for fmt in FORMATS:
        assert fmt in out


def test_a_format_whose_library_is_missing_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "roifile" else find_spec(name, *a),
    )
    table = pd.DataFrame({"row": [1.0], "col": [2.0]})
    with pytest.raises(InvalidInputError, match=r"blobsift\[imagej\]"):
        export_points(table, tmp_path / "r.zip", "imagej-roi")
    assert list(tmp_path.iterdir()) == []
