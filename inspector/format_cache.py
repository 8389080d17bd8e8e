"""The LiteRT format choice remembered per machine and bundle export (Qt-free).

``inspector.runtime.choose_format`` times every format of a bundle's export when it loads
(0.1 s here: each file's first invoke prepares its graph, 12-17 ms, and int8's invokes take
10 ms): a third of ``inspector classify``'s start-up. The result depends on the export, the
CPU, the cores the process may use, the interpreter threads and the LiteRT version, not on the
images, so it is kept in ``format-choice.json`` in the user's data folder under a key made of
all of these and reused for ``MAX_AGE_S``, once two timed loads in a row chose the same format
(``AGREEING_LOADS``: a slow moment of the machine during one timing must not decide for a
week; where two formats are within ``TIE`` of each other, as fp32 and fp16 often are, a timing
that puts the other one first by a hair keeps the choice before rather than starting the count
again, else two tied formats would take turns and neither be reused). A machine that changed
(another host or CPU, fewer cores, a new LiteRT, a re-exported or retrained bundle, another
unknown detector) gets another key and is timed again; so is every load when
``REMEASURE_ENV`` is set to 1. An unreadable or unwritable file only means timing
again: nothing here raises."""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import threading
import time
from pathlib import Path

from training.litert import available_cores

from .paths import user_data_dir

log = logging.getLogger(__name__)

FILE_NAME = "format-choice.json"
MAX_AGE_S = 7 * 24 * 3600      # a week: a machine's speed changes with its updates and load
MAX_ENTRIES = 32               # the most recently measured are kept
AGREEING_LOADS = 2             # timed loads in a row that chose the format before it is reused
TIE = 0.05                     # a format this much slower than the fastest still counts as chosen
CACHE_VERSION = 1              # raised when what is timed (runtime.verdict_timer, probe_images) changes
_BAD = (OSError, ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError)
REMEASURE_ENV = "STEEL_INSPECTOR_REMEASURE"


def cache_file() -> Path:
    return user_data_dir() / FILE_NAME


@functools.lru_cache(maxsize=None)   # the same for the whole process: read once
def _cpu() -> str:
    """The CPU's model and instruction-set flags (Linux), else what ``platform`` says."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return f"{platform.machine()} {platform.processor()} {platform.node()}"
    wanted = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if name in ("model name", "flags") and name not in wanted:
            wanted[name] = value.strip()
        if len(wanted) == 2:
            break
    return (f"{platform.machine()} {wanted.get('model name', '')} {wanted.get('flags', '')}"
            f" {platform.node()}")   # the host too: a data folder shared between machines


@functools.lru_cache(maxsize=None)
def _litert() -> str:
    try:
        import ai_edge_litert

        return str(getattr(ai_edge_litert, "__version__", "")) or str(
            Path(ai_edge_litert.__file__).stat().st_mtime)
    except (ImportError, OSError, TypeError):
        return "none"


def choice_key(info: dict, num_threads: int | None, detector: str | None) -> str:
    """What the choice depends on: the export (its ``inspection.json``: files, sizes, checks),
    the CPU and host, the cores this process may use, the threads asked for, LiteRT, and the
    unknown detector whose verdict was timed (``detector``: its digest, None without one: with
    a detector fitted after the export, fp32 and fp16 score in numpy and time otherwise)."""
    parts = [str(CACHE_VERSION), json.dumps(info, sort_keys=True, default=str), _cpu(),
             str(available_cores()), str(num_threads), _litert(), str(detector)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _read() -> dict:
    try:
        data = json.loads(cache_file().read_text())
        return data if isinstance(data, dict) else {}
    except _BAD:
        return {}


def recall(key: str, now: float | None = None) -> dict | None:
    """The remembered choice for ``key``: {"format", "seconds" (per format), "measured" (epoch
    seconds), "loads" (timed loads in a row that chose it)}, or None when there is none, fewer
    than ``AGREEING_LOADS`` chose it, it is older than ``MAX_AGE_S`` or re-measuring is asked
    for (``REMEASURE_ENV``)."""
    if os.environ.get(REMEASURE_ENV) == "1":
        return None
    entry = _read().get(key)
    now = time.time() if now is None else now
    try:
        fresh = 0 <= now - float(entry["measured"]) <= MAX_AGE_S
        ok = isinstance(entry["format"], str) and all(
            isinstance(k, str) and float(v) > 0 for k, v in entry["seconds"].items())
        agreed = int(entry["loads"]) >= AGREEING_LOADS
    except _BAD:
        return None
    return entry if fresh and ok and agreed and entry["format"] in entry["seconds"] else None


def remember(key: str, fmt: str, seconds: dict[str, float], now: float | None = None) -> None:
    """Keeps a measured choice, counting the timed loads in a row that chose ``fmt`` (or, where
    the format remembered before is within ``TIE`` of ``fmt``'s time in ``seconds``, chose that
    one: it stays). Atomic: another process or thread reading it sees the old file or the new
    one. Failing to write is logged, not raised."""
    data = _read()
    try:
        before = data.get(key)
        kept = before["format"]
        if kept != fmt and kept in seconds and \
                float(seconds[kept]) <= float(seconds[fmt]) * (1 + TIE):
            fmt = kept   # a tie: the choice before stands
        loads = int(before["loads"]) + 1 if kept == fmt else 1
    except _BAD:
        loads = 1
    data[key] = {"format": fmt, "seconds": {k: float(v) for k, v in seconds.items()},
                 "measured": time.time() if now is None else now, "loads": loads}
    keep = sorted(data.items(), key=lambda kv: _measured(kv[1]))[-MAX_ENTRIES:]
    path = cache_file()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(dict(keep), indent=1))
        os.replace(tmp, path)
    except OSError as exc:
        log.info("could not remember the format choice in %s: %s", path, exc)
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _measured(entry) -> float:
    try:
        return float(entry["measured"])
    except _BAD:
        return 0.0
