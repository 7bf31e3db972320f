import subprocess
import sys
import types

import blobsift


def test_import_does_not_load_torch_dask_or_the_web_stack():
    code = (
        "import sys, blobsift; "
        "heavy = [m for m in ('torch', 'dask', 'distributed', 'fastapi', 'onnxruntime', 'napari', "
        "'qtpy', 'PyQt5') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_all_is_sorted_and_every_public_name_resolves():
    assert blobsift.__all__ == sorted(blobsift.__all__)
    for name in blobsift.__all__:
        assert getattr(blobsift, name) is not None


def test_public_names_are_exactly_all():
    public = {
        name
        for name in dir(blobsift)
        if not name.startswith("_") and not isinstance(getattr(blobsift, name), types.ModuleType)
    }
    assert public == set(blobsift.__all__) - {"__version__"}


def test_errors_inherit_the_builtins_a_caller_would_catch():
    assert issubclass(blobsift.InvalidInputError, ValueError)
    assert issubclass(blobsift.NotFittedError, AttributeError)
    assert issubclass(blobsift.ImageReadError, OSError)
    for name in ("InvalidInputError", "NotFittedError", "ModelFileError", "ImageReadError"):
        assert issubclass(getattr(blobsift, name), blobsift.BlobsiftError)
