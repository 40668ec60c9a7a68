"""``make demo``: the main job on a fresh machine (grows with the project; for now, describe a zoo model)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["describe", "regnetx_002"]))
