"""What the benchmarks that classify a bundle's split share: their command line."""
from __future__ import annotations

import argparse


def split_parser(doc: str) -> argparse.ArgumentParser:
    """``--model B --data DIR [--split test] [--seed N] [--json F]``, described by the first
    paragraph of ``doc``."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a bundle folder or a .tflite file in one")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the result here")
    return ap
