"""The browser labelling app (``blobsift label``): needs ``blobsift[app]`` (FastAPI, uvicorn).

Build the app with :func:`blobsift.web.app.create_app`, or serve it with
:func:`blobsift.web.serve.serve`.
"""
