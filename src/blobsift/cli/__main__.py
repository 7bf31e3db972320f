"""``python -m blobsift.cli``: the ``blobsift`` command."""

import sys

from blobsift.cli import main

sys.exit(main())
