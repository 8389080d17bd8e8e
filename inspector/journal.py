"""The verdict journal: an append-only, fsync'd file of JSON lines beside the reviewed images
(or in the user data folder where that folder is read-only), so that a crash or power cut loses
no verdict; reloaded, with the journals of sub-folders, when the folder is opened again. Qt-free.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Iterable

JOURNAL_NAME = "steel-inspector-journal.jsonl"
JOURNAL_VERSION = 1


def now_iso() -> str:
    """Local time with its UTC offset, to the millisecond (what the journal and exports record;
    journals of different folders are merged by it)."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


class JournalError(Exception):
    """The journal cannot be written anywhere; the message names the file and the problem."""


# --------------------------------------------------------------------------------------------
# Journal


def _folder_writable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def fallback_journal_path(root: Path) -> Path:
    """The journal in the user data folder for a folder that cannot be written to."""
    from .paths import user_data_dir

    # os.fsencode: a folder name that is not UTF-8 on disk (from a Windows share or a stick)
    # raised UnicodeEncodeError here, and such a folder could not be opened
    key = hashlib.sha256(os.fsencode(str(Path(root).resolve()))).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(root).resolve().name or "root")[:40]
    return user_data_dir() / "journals" / f"{slug}-{key}.jsonl"


class Journal:
    """Append-only JSON-lines file of verdicts for one folder (the session root).

    It lives beside the images (``steel-inspector-journal.jsonl`` in the folder) or, where the
    folder is read-only, in the user data folder under a name keyed by the folder's path.
    Paths in it are relative to the folder, so a moved or copied folder keeps its verdicts.
    Every record is flushed and fsync'd before ``append`` returns; the last record for a path
    wins; a torn last line (a crash in the middle of a write) is skipped when reading.
    """

    def __init__(self, root: str | Path):
        self.root = Path(os.path.abspath(root))
        root_s = str(self.root)
        self._prefix = root_s if root_s.endswith(os.sep) else root_s + os.sep
        self.local_path = self.root / JOURNAL_NAME
        self.fallback_path = fallback_journal_path(self.root)
        self.path = self.local_path if self._local_ok() else self.fallback_path
        self.skipped_lines = 0
        # journals that exist but could not be read at the last load, in words ("PATH:
        # permission denied"): their verdicts are missing, and the window says so
        self.unreadable: list[str] = []
        # why the last record went to the user data folder's journal, not the folder's (None:
        # it did not); append sets it
        self.fallback_reason: str | None = None

    def _local_ok(self) -> bool:
        return self._local_refusal() is None

    def _local_refusal(self) -> str | None:
        """Why the folder's own journal is not written, in words; None when it is."""
        if self.root == Path(self.root.anchor):  # never litter the top of a drive
            return f"{self.root}: the top of a drive is left as it is"
        if self.local_path.exists():
            return None if os.access(self.local_path, os.W_OK) else f"{self.local_path}: read-only"
        return None if _folder_writable(self.root) else f"{self.root}: the folder is read-only"

    def key(self, path: str | Path) -> str:
        """How a path is named in the journal: relative to the root when inside it."""
        full = os.path.abspath(path)
        if full.startswith(self._prefix):
            return full[len(self._prefix):].replace(os.sep, "/")
        return Path(full).as_posix()

    def resolve(self, key: str) -> Path:
        p = Path(key)
        return p if p.is_absolute() else self.root / p

    def load(self, sub_folders: Iterable[str | Path] = ()) -> dict[str, dict]:
        """The latest record per path key (relative to this folder).

        Besides this folder's own journal (beside the images and in the user data folder), the
        journals of the folders above it (their records for images under this folder) and of the
        given sub-folders are read, so that verdicts given while a parent or a sub-folder was
        open show here too. Each file counts in its own append order; files are merged by the
        records' times in UTC, so a clock or time-zone change cannot reorder one file's records.
        """
        sources: list[tuple[Path, str, str]] = []  # (file, key prefix to strip, prefix to add)
        for above in reversed(self.root.parents):  # the farthest first
            strip = self.root.relative_to(above).as_posix() + "/"
            sources += [(fallback_journal_path(above), strip, ""), (above / JOURNAL_NAME, strip, "")]
        for sub in sorted({os.path.abspath(f) for f in sub_folders}):
            if sub.startswith(self._prefix):
                add = self.key(sub) + "/"
                sources += [(fallback_journal_path(Path(sub)), "", add),
                            (Path(sub) / JOURNAL_NAME, "", add)]
        sources += [(self.fallback_path, "", ""), (self.local_path, "", "")]
        records: list[tuple[float, int, dict]] = []
        self.skipped_lines = 0
        self.unreadable = []
        seen: set[Path] = set()
        for path, strip, add in sources:
            if path in seen:
                continue
            seen.add(path)
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                continue
            except OSError as exc:   # there, but not readable: its verdicts would vanish
                self.unreadable.append(f"{path}: {(exc.strerror or str(exc)).lower()}")
                continue
            latest_time = float("-inf")  # this file's append order wins over its clock
            for line in text.splitlines():
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except (json.JSONDecodeError, RecursionError):   # damaged; absurdly nested
                    self.skipped_lines += 1
                    continue
                if not (isinstance(rec, dict) and isinstance(rec.get("path"), str)):
                    continue
                key = rec["path"]
                if Path(key).is_absolute():
                    key = self.key(key)
                elif strip:
                    if not key.startswith(strip):
                        continue
                    key = key[len(strip):]
                else:
                    key = add + key
                latest_time = max(latest_time, utc_seconds(rec.get("time")))
                records.append((latest_time, len(records), {**rec, "path": key}))
        records.sort(key=lambda r: (r[0], r[1]))
        return {rec["path"]: rec for _, _, rec in records}

    def append(self, record: dict) -> Path:
        """Writes one record durably; falls back to the user data folder if the folder refuses
        (``fallback_reason`` then says why, for the window to tell). The folder is tried again
        for the next record: a share that failed once (a dropped connection) gets the rest of
        the session's verdicts, where other PCs see them. Returns the file written."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:   # a file name that is not valid UTF-8: escaped, exactly
            line = json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n"
        self.fallback_reason = None
        try:
            self._append_to(self.path, line)
            if self.path == self.fallback_path:   # chosen at the start: a read-only folder
                self.fallback_reason = self._local_refusal()
            return self.path
        except OSError as first:
            if self.path == self.fallback_path:
                raise JournalError(f"{self.path}: cannot save the verdict ({first.strerror or first})") from None
            reason = f"{self.path}: {first.strerror or first}"
        try:
            self._append_to(self.fallback_path, line)
        except OSError as exc:
            raise JournalError(f"{self.fallback_path}: cannot save the verdict ({exc.strerror or exc})") from None
        self.fallback_reason = reason
        return self.fallback_path

    def _append_to(self, path: Path, line: str) -> None:
        created = not path.exists()
        if created and path == self.fallback_path:
            path.parent.mkdir(parents=True, exist_ok=True)
        # an image folder that has gone (a share that dropped) is not re-created: opening fails
        # there and the verdict goes to the user data folder's journal
        data = line.encode("utf-8")
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
            # checked before every record, not once: a torn last line (a full disk, a power cut,
            # another PC's crash on a share) must not swallow the next record
            if end > 0:
                os.lseek(fd, end - 1, os.SEEK_SET)
                if os.read(fd, 1) != b"\n":
                    data = b"\n" + data
            written = 0
            try:
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            except OSError:
                try:   # this record's own partial line is cut off again, unless another
                    if os.lseek(fd, 0, os.SEEK_END) == end + written:   # writer came after it
                        os.ftruncate(fd, end)
                except OSError:
                    pass
                raise
        finally:
            os.close(fd)
        if created:
            _fsync_dir(path.parent)


def utc_seconds(stamp) -> float:
    """A journal time (ISO 8601, with its UTC offset) as seconds since the epoch; -inf if none."""
    try:
        t = datetime.fromisoformat(str(stamp))
        # a time without an offset at the calendar's ends ("0001-01-01", "9999-12-31T23:59")
        # cannot be put on this PC's clock: ValueError or OverflowError, which stopped the
        # whole folder from opening
        return (t if t.tzinfo else t.astimezone()).timestamp()
    except (ValueError, OverflowError, OSError):
        return float("-inf")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
