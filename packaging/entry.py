"""Entry point of the frozen (PyInstaller) inspector."""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from inspector.app import main

    sys.exit(main())
