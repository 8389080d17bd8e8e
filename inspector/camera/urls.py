"""Masking passwords in stream URLs: anything that shows or logs a source goes through
:func:`mask_url`, so stream passwords never reach the screen or a log."""
from __future__ import annotations

import re


SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)(.*)$", re.S)
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:password|passwd|pwd|pass|secret|token|auth|apikey|api_key|access_token|key)=)"
    r"([^&;#]*)")
MASK = "****"


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``****``: ``rtsp://user:****@host/...``.

    Handles the user-info password, also one with unescaped ``@``, ``/`` or ``:`` in it (when
    unsure it masks more rather than less: everything up to the last ``@``), and password-like
    query parameters (``?user=a&password=...``). Text that is not a URL is returned unchanged.
    """
    text = str(url)
    m = SCHEME.match(text)
    if m:
        scheme, rest = m.group(1), m.group(2)
        at, colon = rest.rfind("@"), rest.find(":")
        if at > 0 and 0 <= colon < at and not any(c in rest[:colon] for c in "/?#"):
            rest = f"{rest[:colon]}:{MASK}{rest[at:]}"
        text = scheme + rest
    return _SECRET_PARAM.sub(lambda p: p.group(1) + (MASK if p.group(2) else ""), text)


def secrets_in(url: str) -> list[str]:
    """The literal password strings in ``url`` (to scrub them from error messages)."""
    found: list[str] = []
    m = SCHEME.match(str(url))
    if m:
        rest = m.group(2)
        at, colon = rest.rfind("@"), rest.find(":")
        if at > 0 and 0 <= colon < at and not any(c in rest[:colon] for c in "/?#"):
            found.append(rest[colon + 1:at])
    found += [p.group(2) for p in _SECRET_PARAM.finditer(str(url)) if p.group(2)]
    return [s for s in found if s]


# what the video back end (the FFmpeg inside opencv-python-headless) opens as a stream (ftp,
# rtmpt and mmsh were seen to connect; srt is not built in); anything else (smb://, a typo such
# as rstp://) failed at every reconnection with the same generic message, so it is said at once
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "rtmpt", "http", "https", "udp", "tcp",
                  "rtp", "ftp", "mmsh", "mmst")


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a camera stream (a message with the password masked), or None."""
    m = SCHEME.match(str(url).strip())
    if not m:
        return f"{mask_url(url)}: not a URL (it should start with rtsp:// or http://)."
    scheme = m.group(1)[:-3].lower()
    if scheme not in STREAM_SCHEMES:
        return (f"{mask_url(url)}: {scheme}:// is not a stream the camera window can open; "
                f"use {', '.join(s + '://' for s in STREAM_SCHEMES[:-1])} or "
                f"{STREAM_SCHEMES[-1]}://, or choose a video file.")
    return None
