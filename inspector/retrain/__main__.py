"""``python -m inspector.retrain``: see inspector.retrain.cli."""
import sys

from .cli import main

sys.exit(main())
