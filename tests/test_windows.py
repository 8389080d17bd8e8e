"""What differs on Windows, simulated on Linux (nobody runs the tests on Windows): fsync on a
read-only handle, LiteRT's narrow file names, wildcards the shell leaves alone, a redirected
stdout in the ANSI code page, the windowed executable without a console, read-only files in a
work folder."""
from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest


def test_a_bundle_is_flushed_through_a_handle_open_for_writing(tmp_path, monkeypatch):
    """Windows' os.fsync (_commit, FlushFileBuffers) refuses a handle opened read-only with
    EBADF: every training run and every library add then deleted the bundle it had just made."""
    fcntl = pytest.importorskip("fcntl")   # the simulation of Windows needs Linux's fcntl
    from training import bundle

    real = os.fsync

    def windows_fsync(fd):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        real(fd)

    monkeypatch.setattr(bundle.os, "fsync", windows_fsync)
    folder = tmp_path / "b"
    (folder / "sub").mkdir(parents=True)
    (folder / "card.json").write_text("{}", encoding="utf-8")
    (folder / "sub" / "x.bin").write_bytes(b"123")
    os.chmod(folder / "card.json", 0o400)
    bundle.fsync_tree(folder)
    assert stat.S_IMODE(os.stat(folder / "card.json").st_mode) == 0o644
    assert (folder / "sub" / "x.bin").read_bytes() == b"123"


def test_litert_gets_the_bytes_of_a_file_whose_path_is_not_ascii_on_windows(
        stand_in_bundle, tmp_path, monkeypatch):
    from inspector.engine import load_classifier
    from training import litert

    assert litert.model_source("C:/models/m.tflite", platform="win32") == {
        "model_path": "C:/models/m.tflite"}
    assert litert.model_source(tmp_path / "ü.tflite", platform="linux") == {
        "model_path": str(tmp_path / "ü.tflite")}
    assert litert.model_source(b"abc", platform="linux") == {"model_content": b"abc"}

    # the whole engine on a bundle under a user name such as Jürgen, as on Windows: it runs
    # LiteRT from the files' bytes instead of falling back to Keras
    folder = tmp_path / "Jürgen" / "bundle"
    shutil.copytree(stand_in_bundle, folder)
    given, real = [], litert.model_source

    def as_on_windows(m, platform=None):
        given.append(real(m, platform="win32"))
        return given[-1]

    monkeypatch.setattr(litert, "model_source", as_on_windows)
    c = load_classifier(folder)
    assert given and all("model_content" in g for g in given), c.device
    assert c.device.startswith("CPU, LiteRT")


def test_wildcards_are_expanded_on_windows_only(tmp_path):
    from inspector.batch import expand_wildcards

    for name in ("b.png", "a.png", "c.bmp", "[x].png"):
        (tmp_path / name).write_bytes(b"")
    given = [str(tmp_path / "*.png"), str(tmp_path / "none*.png"), str(tmp_path / "[x].png")]
    assert expand_wildcards(given, platform="linux") == given
    assert expand_wildcards(given, platform="win32") == [
        str(tmp_path / "[x].png"), str(tmp_path / "a.png"), str(tmp_path / "b.png"),
        str(tmp_path / "none*.png"),    # matches nothing: its error row names it as given
        str(tmp_path / "[x].png")]      # an existing file named so is that file


def test_the_commands_write_utf8_to_a_redirected_stdout_on_windows(monkeypatch):
    from training.console import utf8_stdout

    out = io.TextIOWrapper(io.BytesIO(), encoding="cp1252")
    monkeypatch.setattr(sys, "stdout", out)
    utf8_stdout(platform="win32")
    assert out.encoding == "utf-8"
    # elsewhere too, where the locale is not UTF-8 and the output is redirected (the --excel
    # byte-order mark stopped a run under LC_ALL=pl_PL.ISO-8859-2); UTF-8 stays as it is
    latin2 = io.TextIOWrapper(io.BytesIO(), encoding="iso-8859-2")
    monkeypatch.setattr(sys, "stdout", latin2)
    utf8_stdout(platform="linux")
    assert latin2.encoding == "utf-8"
    plain = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdout", plain)
    utf8_stdout(platform="linux")
    assert plain.errors == "strict"
    monkeypatch.setattr(sys, "stdout", None)   # fd 1 closed: nothing to do, no error
    utf8_stdout(platform="linux")
    monkeypatch.setattr(sys, "stdout", out)
    print("Pęknięcie/łuska.png", file=out)    # raised UnicodeEncodeError in cp1252
    out.flush()
    assert "ł".encode() in out.buffer.getvalue()


def test_the_windowed_program_sends_commands_to_the_console_program(monkeypatch):
    from inspector import app

    monkeypatch.setattr(app, "sys", SimpleNamespace(platform="win32", stdout=None, stderr=None,
                                                    argv=["inspector"]))
    assert app._windowed()
    told = []
    monkeypatch.setattr(app, "_tell_to_use_cli", lambda command: told.append(command) or 2)
    ran = []
    monkeypatch.setattr(app, "_command", lambda name, argv: ran.append(name) or 0)
    assert app.main(["classify", "x.png"]) == 2
    assert app.main(["retrain", "--data", "d"]) == 2
    assert app.main(["--version"]) == 2
    assert told == ["classify", "retrain", ""] and ran == []


def _windows_unlink(monkeypatch):
    """os.unlink as Windows does it: a file without its write permission is refused."""
    real = os.unlink

    def unlink(path, *, dir_fd=None):
        if not os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode & stat.S_IWRITE:
            raise PermissionError(errno.EACCES, "Access is denied", path)
        real(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", unlink)
    monkeypatch.setattr(os, "remove", unlink)


def test_a_work_folder_with_read_only_files_is_removed_but_a_linked_original_untouched(
        tmp_path, monkeypatch):
    from inspector.retrain import workdirs

    original = tmp_path / "user" / "img.png"
    original.parent.mkdir()
    original.write_bytes(b"png")
    os.chmod(original, 0o444)
    work = tmp_path / "work"
    (work / "a").mkdir(parents=True)
    (work / "a" / "copied.png").write_bytes(b"png")
    os.chmod(work / "a" / "copied.png", 0o444)
    _windows_unlink(monkeypatch)
    workdirs._rmtree(work)
    assert not work.exists()                        # before: left there after every run

    (work / "b").mkdir(parents=True)
    os.link(original, work / "b" / "linked.png")
    workdirs._rmtree(work)
    assert (work / "b" / "linked.png").exists()     # a link's attribute is the original's too
    assert not os.stat(original).st_mode & stat.S_IWRITE


def test_read_only_images_are_copied_into_the_work_folder_on_windows(tmp_path, monkeypatch):
    from inspector.retrain import data
    from training.checks import Sample

    src = tmp_path / "src.png"
    src.write_bytes(b"png")
    os.chmod(src, 0o444)
    monkeypatch.setattr(data, "sys", SimpleNamespace(platform="win32"))
    monkeypatch.setattr(data.os, "access", lambda path, mode: False)
    target, origin = data.stage_dataset([Sample(str(src), "crack")], tmp_path / "staged")
    (dst,) = origin
    assert os.stat(dst).st_ino != os.stat(src).st_ino      # a copy, not a link
    assert os.stat(dst).st_mode & stat.S_IWRITE             # without the read-only attribute
    assert Path(dst).read_bytes() == b"png"


@pytest.mark.parametrize("platform", ["linux"])
def test_images_are_linked_elsewhere(tmp_path, monkeypatch, platform):
    from inspector.retrain import data
    from training.checks import Sample

    src = tmp_path / "src.png"
    src.write_bytes(b"png")
    _, origin = data.stage_dataset([Sample(str(src), "crack")], tmp_path / "staged")
    (dst,) = origin
    assert os.stat(dst).st_ino == os.stat(src).st_ino


def test_every_command_sets_its_output_up_first(monkeypatch, tmp_path, capsys):
    """`python -m inspector.library list`, `python -m training ...` and the app's commands: on
    a redirected Windows stdout a Polish or Chinese model name ended `list` in a traceback."""
    from inspector import library
    from training import cli, console

    called = []
    monkeypatch.setattr(console, "utf8_stdout", lambda platform=None: called.append(1))
    assert library.main(["--root", str(tmp_path / "lib"), "list"]) == 0
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert len(called) == 2
