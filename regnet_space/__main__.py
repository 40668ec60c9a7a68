"""``python -m regnet_space``: the same command line as ``regnet-space``, for environments without the script."""

import sys

from .cli import main

sys.exit(main())
