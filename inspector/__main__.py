"""``python -m inspector``: the ``inspector`` command (see inspector.app)."""
import sys

from .app import main

sys.exit(main())
