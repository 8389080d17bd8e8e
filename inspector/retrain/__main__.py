"""``python -m inspector.retrain``: see inspector.retrain.cli."""
import sys

from training.console import utf8_stdout

from .cli import main

utf8_stdout()
sys.exit(main())
