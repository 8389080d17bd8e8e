"""What made a bundle: the code (the project's git commit, whether the working tree differed from
it, the package version) and each step after training (``python -m training calibrate``,
``export``, ``robustness --card``) with its command and time, in the model card. A maintainer
auditing the bundled 1.4.0 found that its card named a training command of code 94 commits
older, with unquoted notes that a shell could not run again, and no record of the detector
refitted and the exports made since (2026-12-07)."""
from __future__ import annotations

import shlex
import subprocess
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shell_command(argv: list[str], program: str = "python -m training") -> str:
    """The command as a POSIX shell runs it again (arguments with spaces quoted)."""
    return f"{program} {shlex.join(str(a) for a in argv)}".rstrip()


def code_version() -> dict:
    """The project's commit (None outside a git checkout: the packaged app, a copy), whether
    tracked files differed from it, and the installed package's version."""
    out: dict = {"commit": None, "dirty": None, "version": None}
    try:
        from importlib.metadata import version

        out["version"] = version("steel-inspector")
    except Exception:   # noqa: BLE001 - not installed (a copy, the packaged app)
        pass
    if not (ROOT / ".git").exists():
        return out
    try:
        run = dict(cwd=ROOT, capture_output=True, text=True, timeout=10)
        head = subprocess.run(["git", "rev-parse", "HEAD"], **run)
        if head.returncode == 0:
            out["commit"] = head.stdout.strip()
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    **run)
            out["dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def record_step(bundle_dir: str | Path, step: str, command: str) -> None:
    """Appends one step made on a finished bundle to its card's ``history`` (the card replaced
    atomically): the step, its command, the code and the time (UTC)."""
    from .bundle import CARD_FILE, read_card, write_json

    card = read_card(bundle_dir)
    history = card.get("history") if isinstance(card.get("history"), list) else []
    history.append({"step": step, "command": command, "code": code_version(),
                    "time": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    card["history"] = history
    write_json(Path(bundle_dir) / CARD_FILE, card)
