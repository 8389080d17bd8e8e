"""``python -m inspector``: the ``inspector`` command (see inspector.app)."""
import sys

from .app import main

if __name__ == "__main__":  # not when a child process (inspector.offload) imports it
    sys.exit(main())
