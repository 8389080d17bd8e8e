"""inspector.library: versions, activation, rollback, removal, and its command line. The
bundles here are fake (a card and a placeholder model file): the library never loads models."""
import json
import zipfile
from pathlib import Path

import pytest

from inspector import paths
from inspector.library import ACTIVE_FILE, LibraryError, ModelLibrary, main, slug
from training.bundle import BundleError, read_card


def fake_bundle(folder: Path, name="SSDC-MiniNet", accuracy=0.9, created="2026-11-01T10:00:00+00:00"):
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "model.keras", "w") as z:   # a Keras archive is a zip
        z.writestr("config.json", "{}")
    (folder / "model_card.json").write_text(json.dumps({
        "name": name, "version": "1.0.0", "class_names": ["a", "b"], "input_size": 64,
        "created": created, "metrics": {"test": {"accuracy": accuracy, "count": 10}}}))
    return folder


def test_default_root_is_the_user_library(tmp_path):
    assert ModelLibrary().root == paths.model_library_dir()
    assert str(paths.model_library_dir()).startswith(str(tmp_path))  # isolated per test
    assert ModelLibrary().versions() == []
    assert ModelLibrary().active_path() is None


def test_startup_model_is_the_active_version_else_the_bundled_one(tmp_path, caplog):
    from inspector.batch import startup_fallback, startup_model_path

    bundled = paths.bundled_model_dir()
    assert startup_model_path() == bundled                      # an empty library
    lib = ModelLibrary()
    version = lib.activate(lib.add(fake_bundle(tmp_path / "b")))
    assert startup_model_path() == version
    assert startup_model_path("explicit") == Path("explicit")   # a named model wins
    assert startup_fallback(version) == bundled                 # if the active one fails to load
    assert startup_fallback(version, explicit="explicit") is None
    assert startup_fallback(bundled) is None
    (lib.root / ACTIVE_FILE).write_text(json.dumps({"active": 5}))  # a damaged library
    assert startup_model_path() == bundled
    assert "model library" in caplog.text and "using the bundled model" in caplog.text


def test_add_versions_and_metrics(tmp_path):
    lib = ModelLibrary(tmp_path / "lib")
    src = fake_bundle(tmp_path / "b1", accuracy=0.91, created="2026-11-01T10:00:00+00:00")
    p1 = lib.add(src)
    p2 = lib.add(fake_bundle(tmp_path / "b2", accuracy=0.95, created="2026-11-02T10:00:00+00:00"))
    p3 = lib.add(fake_bundle(tmp_path / "b3", name="Plant 7"), name="plant 7")
    assert (p1.name, p2.name, p3.name) == ("ssdc-mininet-v1", "ssdc-mininet-v2", "plant-7-v1")
    assert src.is_dir()  # copied, not moved
    vs = lib.versions()
    # oldest first: by creation time, then name
    assert [v.version for v in vs] == ["plant-7-v1", "ssdc-mininet-v1", "ssdc-mininet-v2"]
    v2 = lib.find("ssdc-mininet-v2")
    assert v2.test_accuracy == pytest.approx(0.95) and v2.number == 2 and v2.path == p2
    assert v2.created.startswith("2026-11-02")
    assert read_card(p2)["library"]["version"] == "ssdc-mininet-v2"
    assert lib.find(str(p1)).version == "ssdc-mininet-v1"
    assert lib.find("v2").version == "ssdc-mininet-v2"
    with pytest.raises(LibraryError, match="ambiguous"):
        lib.find("1")
    with pytest.raises(LibraryError, match="no model version"):
        lib.find("v9")
    # nothing half-written is left beside the versions
    assert not [p for p in lib.root.iterdir() if p.name.startswith(".")]


def test_add_move_and_bad_bundle(tmp_path):
    lib = ModelLibrary(tmp_path / "lib")
    src = fake_bundle(tmp_path / "b")
    path = lib.add(src, move=True)
    assert not src.exists() and (path / "model.keras").is_file()
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="not a model bundle"):
        lib.add(tmp_path / "empty")
    assert [v.version for v in lib.versions()] == ["ssdc-mininet-v1"]
    assert lib.next_path("SSDC-MiniNet").name == "ssdc-mininet-v2"


def test_links_inside_a_bundle(tmp_path):
    """A link to a file is copied as that file (a moved bundle too: its link could point
    nowhere once moved); a link to a folder is refused by name, not followed (a link to a
    drive's root, or back up to the bundle, would copy without end)."""
    lib = ModelLibrary(tmp_path / "lib")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "history.csv").write_text("epoch,loss\n1,0.5\n")
    src = fake_bundle(tmp_path / "b")
    (src / "history.csv").symlink_to(Path("..") / "elsewhere" / "history.csv")
    path = lib.add(src, move=True)
    copied = path / "history.csv"
    assert not copied.is_symlink() and copied.read_text().startswith("epoch") and not src.exists()
    looped = fake_bundle(tmp_path / "c")
    (looped / "again").symlink_to(looped, target_is_directory=True)
    with pytest.raises(LibraryError, match="a link to a folder") as caught:
        lib.add(looped)
    assert str(looped / "again") in str(caught.value)
    assert [v.version for v in lib.versions()] == [path.name]
    assert (looped / "model.keras").is_file()   # the refused bundle is left as it was
    real = fake_bundle(tmp_path / "real")     # a bundle given as a link to its folder
    (tmp_path / "linked").symlink_to(real, target_is_directory=True)
    moved = lib.add(tmp_path / "linked", move=True)
    assert not moved.is_symlink() and (moved / "model.keras").is_file()
    assert "library" not in read_card(real)   # its card is the library's copy, not the source's


def test_a_copy_that_fails_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """A full disk during ``add``: shutil.copytree's error is a list of every failed file (about
    1,000 characters, found by an audit); it is said as the library, the bundle and the first
    failure, and the half copy is gone."""
    import errno
    import shutil

    src = fake_bundle(tmp_path / "b")
    real = shutil.copyfile

    def full(a, b, *args, **kwargs):
        if Path(a).name == "model.keras":
            raise OSError(errno.ENOSPC, "No space left on device", str(b))
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", full)
    lib = ModelLibrary(tmp_path / "lib")
    with pytest.raises(LibraryError) as caught:
        lib.add(src)
    text = str(caught.value)
    assert str(src) in text and "No space left on device" in text and "[(" not in text
    assert [p.name for p in lib.root.iterdir() if not p.name.startswith(".lock")] == []
    assert main(["--root", str(lib.root), "add", str(src)]) != 0
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err and len(err) < 600


def test_activate_rollback_remove(tmp_path):
    lib = ModelLibrary(tmp_path / "lib")
    p1 = lib.add(fake_bundle(tmp_path / "b1"))
    p2 = lib.add(fake_bundle(tmp_path / "b2"))
    assert lib.active_path() is None and not lib.can_roll_back()
    with pytest.raises(LibraryError, match="no earlier model"):
        lib.rollback()
    assert lib.activate("ssdc-mininet-v1") == p1
    assert lib.activate(p2) == p2
    assert lib.active_path() == p2
    state = json.loads((lib.root / ACTIVE_FILE).read_text())
    assert state == {"active": "ssdc-mininet-v2", "history": [None, "ssdc-mininet-v1"]}
    with pytest.raises(LibraryError, match="in use"):
        lib.remove("v2")
    assert lib.rollback() == p1
    assert lib.rollback() is None  # back to the bundled model
    assert lib.active_path() is None
    lib.activate("v2")
    lib.activate("bundled")
    assert lib.active_path() is None
    lib.remove("v2")  # not in use any more
    assert not p2.exists()
    with pytest.raises(LibraryError):  # the only earlier model is gone
        lib.rollback()
    p3 = lib.add(fake_bundle(tmp_path / "b3"))
    lib.activate(p3)
    lib.activate(p1)
    lib.remove(p3)
    assert lib.rollback() is None  # the removed v3 is skipped: back to the bundled model


def test_two_processes_changing_the_library_at_once_lose_nothing(tmp_path, monkeypatch):
    """Two switches at the same moment (two windows, a window and the command line) kept only
    one of them in the history; a remove beside an activate of the same version could leave
    active.json naming a version that is gone. Each changes the state under the library's lock
    (a lock per open file, so threads with their own library objects contend as processes do)."""
    import threading
    import time

    lib = ModelLibrary(tmp_path / "lib")
    p1 = lib.add(fake_bundle(tmp_path / "b1"))
    p2 = lib.add(fake_bundle(tmp_path / "b2"))
    real_state = ModelLibrary._state

    def slow(self):   # each reads the state, then takes its time before writing
        state = real_state(self)
        time.sleep(0.3)
        return state

    monkeypatch.setattr(ModelLibrary, "_state", slow)
    errors = []

    def run(fn, *args):
        try:
            fn(*args)
        except LibraryError as exc:
            errors.append(str(exc))

    both = [threading.Thread(target=run, args=(ModelLibrary(lib.root).activate, p.name))
            for p in (p1, p2)]
    for t in both:
        t.start()
    for t in both:
        t.join()
    state = real_state(lib)
    assert {state["active"], *state["history"]} == {None, p1.name, p2.name}   # both switches
    other = p1 if state["active"] == p2.name else p2
    pair = [threading.Thread(target=run, args=(ModelLibrary(lib.root).activate, other.name)),
            threading.Thread(target=run, args=(ModelLibrary(lib.root).remove, other.name))]
    for t in pair:
        t.start()
        time.sleep(0.05)
    for t in pair:
        t.join()
    state = real_state(lib)
    assert (lib.root / state["active"]).is_dir()             # never a version that is gone
    assert len(errors) == 1 and "in use" in errors[0]


def test_removed_active_folder_falls_back_to_bundled(tmp_path):
    lib = ModelLibrary(tmp_path / "lib")
    p1 = lib.add(fake_bundle(tmp_path / "b1"))
    lib.activate(p1)
    (p1 / "model_card.json").unlink()  # damaged by hand
    assert lib.active_version() is None
    assert lib.active_path() == p1   # loading it fails and says so; the app then falls back
    (lib.root / ACTIVE_FILE).write_text("{ not json")
    assert lib.active_path() is None  # an unreadable pointer means: the bundled model


def test_slug():
    assert slug("SSDC-MiniNet (plant 2)") == "ssdc-mininet-plant-2"
    assert slug("///") == "model"
    assert slug("Walcownia Łódź 2") == "walcownia-lodz-2"     # was "walcownia-d-2"
    assert slug("氧化皮 二号线") == "氧化皮-二号线"                # was "model"
    assert slug("Hütte_Süd / Straße") == "hutte-sud-strasse"
    assert slug("x" * 200) == "x" * 60
    assert slug("ガラス") == "ガラス" and slug("ガス") != slug("カス")    # marks kept (a review)
    assert slug("हिंदी") == "हिंदी"


def test_a_series_named_before_the_slug_changed_goes_on(tmp_path):
    """A library holding "walcownia-d-v1..v2" (the slug before 2026-12-07) numbers the next
    version of "Walcownia Łódź" v3 in that series, not a new "walcownia-lodz-v1"."""
    lib = ModelLibrary(tmp_path / "lib")
    for n in (1, 2):
        fake_bundle(lib.root / f"walcownia-d-v{n}", name="Walcownia Łódź")
    assert lib.next_path("Walcownia Łódź").name == "walcownia-d-v3"
    assert lib.add(fake_bundle(tmp_path / "b", name="Walcownia Łódź")).name == "walcownia-d-v3"
    assert lib.next_path("Huta Łaziska").name == "huta-laziska-v1"       # a new name: the new slug
    fake_bundle(lib.root / "model-v1", name="氧化皮")
    assert lib.next_path("氧化皮").name == "氧化皮-v1"   # "model" was no model's series


def test_command_line(tmp_path, capsys):
    root = tmp_path / "lib"
    b = fake_bundle(tmp_path / "b", accuracy=0.875)
    assert main(["--root", str(root), "add", str(b), "--activate"]) == 0
    assert "now using ssdc-mininet-v1" in capsys.readouterr().out
    assert main(["--root", str(root), "list"]) == 0
    out = capsys.readouterr().out
    assert "ssdc-mininet-v1" in out and "87.50%" in out
    line = next(l for l in out.splitlines() if "ssdc-mininet-v1" in l)
    assert line.startswith("*")
    assert main(["--root", str(root), "rollback"]) == 0
    assert "bundled model" in capsys.readouterr().out
    assert main(["--root", str(root), "activate", "v1"]) == 0
    assert main(["--root", str(root), "remove", "v1"]) == 2
    assert "in use" in capsys.readouterr().err
    assert main(["--root", str(root), "activate", "v7"]) == 2
    assert main(["--root", str(root), "remove", "bundled"]) == 2
    assert "part of the program" in capsys.readouterr().err
    assert main(["--root", str(root), "add", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_retraining_starts_from_the_bundled_model_when_the_active_one_is_damaged(
        tmp_path, caplog):
    from inspector import paths

    lib = ModelLibrary(tmp_path / "lib")
    p1 = lib.add(fake_bundle(tmp_path / "b1"))
    lib.activate(p1)
    assert lib.resolved_active_path() == p1
    (p1 / "model_card.json").unlink()
    with caplog.at_level("WARNING"):
        assert lib.resolved_active_path() == paths.bundled_model_dir()
    assert p1.name in caplog.text and "bundled" in caplog.text


def test_a_damaged_version_is_listed_as_damaged_and_can_be_removed(tmp_path):
    lib = ModelLibrary(tmp_path / "lib")
    p1 = lib.add(fake_bundle(tmp_path / "b1"))
    (p1 / "model_card.json").write_text("{ junk")
    assert lib.versions() == []
    [(name, path, problem)] = lib.damaged_versions()
    assert name == p1.name and path == p1 and "damaged model card" in problem
    lib.remove(name)
    assert not p1.exists() and lib.damaged_versions() == []
    # a card saved in a Windows code page (an editor): listed as damaged, not a traceback
    p2 = lib.add(fake_bundle(tmp_path / "b2"))
    (p2 / "model_card.json").write_bytes('{"notes": "\u2013"}'.encode("cp1252"))
    [(name, _, problem)] = lib.damaged_versions()
    assert name == p2.name and "not UTF-8" in problem and "model_card.json" in problem


def test_a_version_its_own_test_figures_call_not_usable_is_not_activated_without_force(
        tmp_path, capsys):
    """A model that never finds one class (its card's test confusion matrix) is refused by
    activate, in the library and its command, unless forced; a usable one goes through."""
    from inspector.library import NotUsableError
    from training.card import ModelCard

    lib = ModelLibrary(tmp_path / "lib")
    bad = fake_bundle(tmp_path / "bad")
    card = json.loads((bad / "model_card.json").read_text())
    card["metrics"]["test"]["confusion_matrix"] = [[5, 0], [5, 0]]   # "b" never found
    (bad / "model_card.json").write_text(json.dumps(card))
    assert ModelCard.of(card).usability_problems()[-1] == \
        "it rarely finds b (recall 0%); the median class recall is 50%"
    good = fake_bundle(tmp_path / "good")
    card["metrics"]["test"]["confusion_matrix"] = [[5, 0], [1, 4]]
    (good / "model_card.json").write_text(json.dumps(card))
    p_bad, p_good = lib.add(bad), lib.add(good)
    with pytest.raises(NotUsableError, match="not usable: .*it rarely finds b"):
        lib.activate(p_bad.name)
    assert lib.active_path() is None
    assert lib.activate(p_good.name) == p_good
    assert main(["--root", str(lib.root), "activate", p_bad.name]) == 2
    assert "use --force" in capsys.readouterr().err and lib.active_path() == p_good
    assert main(["--root", str(lib.root), "activate", p_bad.name, "--force"]) == 0
    assert lib.active_path() == p_bad


def test_what_a_killed_add_or_remove_left_is_finished_or_cleared(tmp_path, stand_in_bundle):
    import os
    import shutil

    lib = ModelLibrary(tmp_path / "lib")
    lib.root.mkdir()
    hour_ago = __import__("time").time() - 2 * 3600
    stranded = lib.root / ".plant.moving-0123abcd"   # moved in, killed before the rename
    shutil.copytree(stand_in_bundle, stranded)
    removing = lib.root / ".plant-v7.removing-89abcdef"
    removing.mkdir()
    cut_copy = lib.root / ".other.adding-fedcba98"    # a copy cut short: its source remains
    shutil.copytree(stand_in_bundle, cut_copy)
    (lib.root / (cut_copy.name + ".lock")).write_bytes(b"")   # this version's: its lock, dead
    broken_move = lib.root / ".third.moving-76543210"  # never deleted: it was moved here
    broken_move.mkdir()
    fresh = lib.root / ".plant.moving-00000000"        # another process adding right now
    fresh.mkdir()
    for d in (stranded, removing, cut_copy, broken_move):
        os.utime(d, (hour_ago, hour_ago))
    [v] = lib.versions()
    assert v.version == "plant-v1" and read_card(v.path)["library"]["version"] == "plant-v1"
    assert not stranded.exists() and not removing.exists() and not cut_copy.exists()
    assert fresh.exists() and broken_move.exists()


def test_an_older_versions_interrupted_add_is_finished_not_deleted(tmp_path, stand_in_bundle):
    """Before 2026-12-05 ``add(move=True)`` moved the retrained bundle into ".NAME.adding-", and
    before 2026-12-07 no add left a lock file: an upgrade audit found such a folder (the only
    copy of a model whose save a power cut interrupted) deleted without a word by the first
    scan. It is finished as a version; one that is no bundle is left, not deleted."""
    import os
    import shutil

    lib = ModelLibrary(tmp_path / "lib")
    lib.root.mkdir()
    two_hours_ago = __import__("time").time() - 2 * 3600
    old_move = lib.root / ".plant-model.adding-1a2b3c4d"
    shutil.copytree(stand_in_bundle, old_move)
    not_a_bundle = lib.root / ".other.adding-5e6f7a8b"
    not_a_bundle.mkdir()
    (not_a_bundle / "model.keras").write_bytes(b"half")
    for d in (old_move, not_a_bundle):
        os.utime(d, (two_hours_ago, two_hours_ago))
    [v] = lib.versions()
    assert not old_move.exists() and read_card(v.path)["library"]["version"] == v.version
    assert not_a_bundle.exists()


def test_a_dead_add_is_finished_at_once_a_live_one_never(tmp_path, stand_in_bundle):
    """An add's hidden folder carries a lock its process holds: once that process is dead (its
    lock file there, unheld) the sweep finishes the add at once, not after an hour (a crash
    audit: the moved-in model was hidden that long, and a later add took its number)."""
    import shutil
    import subprocess
    import sys

    from inspector.library import _WorkGuard

    lib = ModelLibrary(tmp_path / "lib")
    lib.root.mkdir()
    dead = lib.root / ".plant.moving-0123abcd"
    shutil.copytree(stand_in_bundle, dead)
    (lib.root / (dead.name + ".lock")).write_bytes(b"")    # its process died: nobody holds it
    live = lib.root / ".plant.moving-00000000"
    shutil.copytree(stand_in_bundle, live)
    holder = subprocess.Popen(   # another process adding right now, holding its lock
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from inspector.library import _WorkGuard; g = _WorkGuard(Path(sys.argv[1])); "
         "print('held', flush=True); sys.stdin.read()", str(live)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        [v] = lib.versions()
        assert v.version == "plant-v1" and not dead.exists() and live.exists()
        assert not (lib.root / (dead.name + ".lock")).exists()
    finally:
        holder.communicate("")
    lib2 = ModelLibrary(lib.root)   # its process has ended: finished by the next sweep
    assert [v.version for v in lib2.versions()] == ["plant-v1", "plant-v2"]
    assert not list(lib.root.glob(".*.lock")) or \
        [p.name for p in lib.root.glob(".*.lock")] == [".library.lock"]
    guard = _WorkGuard(lib.root / ".x.moving-11111111")   # an add that ends well: no trace
    guard.release()
    assert not (lib.root / ".x.moving-11111111.lock").exists()


def test_a_bundle_write_killed_between_its_renames_gets_the_old_bundle_back(tmp_path,
                                                                           stand_in_bundle):
    import os
    import shutil

    from training.bundle import recover_interrupted

    target = tmp_path / "out"
    old = tmp_path / ".out.old-0123abcd"      # renamed aside; the new one never took its place
    shutil.copytree(stand_in_bundle, old)
    partial = tmp_path / ".out.partial-x1"
    partial.mkdir()
    running = tmp_path / ".out.partial-x2"    # another run writing now
    running.mkdir()
    hour_ago = __import__("time").time() - 2 * 3600
    for d in (old, partial):
        os.utime(d, (hour_ago, hour_ago))
    recover_interrupted(target)
    assert read_card(target)["class_names"] == read_card(stand_in_bundle)["class_names"]
    assert not old.exists() and not partial.exists() and running.exists()
    # a fragment (its deletion was cut short) is not put back, only cleared
    fragment = tmp_path / ".other.old-89abcdef"
    shutil.copytree(stand_in_bundle, fragment)
    (fragment / "model.keras").unlink()
    os.utime(fragment, (hour_ago, hour_ago))
    recover_interrupted(tmp_path / "other")
    assert not (tmp_path / "other").exists() and not fragment.exists()


@pytest.mark.parametrize("damage", [{"metrics": "oops"}, {"metrics": {"test": {"accuracy": "high"}}},
                                    {"metrics": {"test": ["x"]}}, {"training": "x", "dataset": 3}])
def test_a_card_with_wrongly_typed_fields_is_listed_and_opens_the_models_dialog(tmp_path, qtbot,
                                                                                 damage):
    """A hand-edited card: the Models dialog used to raise in its list (card.metrics,
    test_accuracy), so the damaged version could be neither switched away from nor removed."""
    from inspector.gui.model_manager import ModelManagerDialog

    lib = ModelLibrary()
    p = lib.add(fake_bundle(tmp_path / "b1"))
    card = json.loads((p / "model_card.json").read_text())
    (p / "model_card.json").write_text(json.dumps({**card, **damage}))
    [v] = lib.versions()
    assert v.test_accuracy == (None if "metrics" in damage else 0.9)
    dlg = ModelManagerDialog()
    qtbot.addWidget(dlg)
    assert dlg.table.rowCount() == 2
    dlg.select(v.version)                                     # its details: said, not raised
    assert dlg.details.toPlainText() and dlg.remove_button.isEnabled()


def test_a_card_too_damaged_to_judge_is_refused_by_name(tmp_path):
    lib = ModelLibrary(tmp_path / "lib")
    p = lib.add(fake_bundle(tmp_path / "b1"))
    card = json.loads((p / "model_card.json").read_text())
    card["metrics"]["test"]["confusion_matrix"] = [[1, "x"], [0, 1]]
    (p / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(LibraryError, match="damaged model card"):
        lib.activate(p)
    assert lib.active_path() is None


def test_a_damaged_choice_file_and_one_that_cannot_be_written(tmp_path):
    lib = ModelLibrary(tmp_path / "lib")
    p1 = lib.add(fake_bundle(tmp_path / "b1"))
    (lib.root / ACTIVE_FILE).write_text(json.dumps({"active": ["x"], "history": [3, None, {}]}))
    assert lib.active_path() is None and lib.active_version() is None   # as unreadable: bundled
    assert lib.activate(p1) == p1
    (lib.root / ACTIVE_FILE).unlink()
    (lib.root / ACTIVE_FILE).mkdir()            # a folder where the file goes: cannot be written
    with pytest.raises(LibraryError, match=f"cannot save which model is in use to .*{ACTIVE_FILE}"):
        lib.activate(p1)


def test_the_models_dialog_by_keyboard(tmp_path, qtbot, monkeypatch):
    """Enter on a version switched the model the whole folder is classified with (Use this
    model was the default button); Tab moved from cell to cell and never reached the buttons;
    Delete did nothing."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    from inspector.gui.model_manager import ModelManagerDialog

    lib = ModelLibrary()
    lib.add(fake_bundle(tmp_path / "b1"))
    [v] = lib.versions()
    dlg = ModelManagerDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.select(v.version)
    dlg.table.setFocus()
    qtbot.waitUntil(dlg.table.hasFocus, timeout=5000)
    switched = []
    dlg.model_selected.connect(switched.append)
    qtbot.keyClick(dlg.table, Qt.Key.Key_Return)
    assert switched == [] and lib.active_path() is None and not dlg.isVisible()   # closed
    dlg.show()
    dlg.select(v.version)
    dlg.table.setFocus()
    qtbot.waitUntil(dlg.table.hasFocus, timeout=5000)
    qtbot.keyClick(dlg.table, Qt.Key.Key_Tab)
    assert not dlg.table.hasFocus()                            # on towards the buttons
    dlg.use_button.setFocus()
    qtbot.waitUntil(dlg.use_button.hasFocus, timeout=5000)
    qtbot.keyClick(dlg.use_button, Qt.Key.Key_Return)          # Enter on a button presses it
    assert switched == [str(v.path)] and lib.active_path() == v.path
    dlg.rollback()
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes)
    dlg.table.setFocus()
    qtbot.waitUntil(dlg.table.hasFocus, timeout=5000)
    qtbot.keyClick(dlg.table, Qt.Key.Key_Delete)
    assert len(asked) == 1 and lib.versions() == []


def test_the_time_a_model_was_made_is_shown_in_this_pcs_time(tmp_path, monkeypatch, capsys):
    """The card keeps UTC; cut to the minute it showed a model trained at 12:28 in India as
    06:58 (a locale audit)."""
    import time

    from training.card import local_minute

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert local_minute("2026-12-07T06:58:31+00:00") == "2026-12-07 12:28"
        assert local_minute("2026-12-07T06:58:31") == "2026-12-07 06:58"    # no offset: as written
        assert local_minute("yesterday") == "yesterday"
        # a hand-edited time at the calendar's end is shown as written, not an OverflowError
        assert local_minute("9999-12-31T23:59:59+00:00") == "9999-12-31 23:59"
        lib = ModelLibrary(tmp_path / "lib")
        lib.add(fake_bundle(tmp_path / "b", created="2026-12-07T06:58:31+00:00"))
        assert main(["--root", str(lib.root), "list"]) == 0
        assert "2026-12-07 12:28" in capsys.readouterr().out
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_damaged_choice_file_is_said_at_start_not_only_logged(tmp_path):
    """A truncated active.json started the bundled model with nothing said in the window (a
    log line on stderr, which the Windows executable has not)."""
    from inspector.batch import startup_model_path

    lib = ModelLibrary()
    lib.activate(lib.add(fake_bundle(tmp_path / "b")))
    (lib.root / ACTIVE_FILE).write_text('{"active": "ssdc-mi')
    notes: list[str] = []
    assert startup_model_path(None, notes) == paths.bundled_model_dir()
    assert len(notes) == 1 and ACTIVE_FILE in notes[0] and "bundled model" in notes[0]
    notes.clear()
    assert startup_model_path("explicit", notes) == Path("explicit") and notes == []


def test_a_removed_versions_number_is_not_given_again(tmp_path):
    """remove v2, then add another model: it became v2 again, and "v2" in notes and on other
    PCs named two different models."""
    lib = ModelLibrary(tmp_path / "lib")
    v1 = lib.add(fake_bundle(tmp_path / "b1"))
    v2 = lib.add(fake_bundle(tmp_path / "b2"))
    lib.remove(v2.name)
    v3 = lib.add(fake_bundle(tmp_path / "b3"))
    assert v2.name.endswith("-v2") and v3.name.endswith("-v3")
    assert [v.version for v in lib.versions()] == [v1.name, v3.name]


def test_a_bundle_on_a_read_only_medium_is_added(tmp_path):
    """copytree copied the medium's read-only folders, the copy could not take its card, and a
    read-only hidden folder stayed in the library for ever."""
    import stat

    src = fake_bundle(tmp_path / "cd" / "bundle")
    for p in (src / "model.keras", src / "model_card.json", src):
        p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
                | (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH if p.is_dir() else 0))
    try:
        lib = ModelLibrary(tmp_path / "lib")
        added = lib.add(src)
        assert read_card(added)["library"]["version"] == added.name
        # by its mode bits, not os.access: root may write anywhere, and CI may run as root
        assert all(p.stat().st_mode & stat.S_IWUSR for p in (added, *added.iterdir()))
        assert not [p for p in lib.root.iterdir() if p.name.startswith(".") and p.is_dir()]
    finally:
        src.chmod(0o755)


def test_a_damaged_version_in_use_is_named_not_hidden(tmp_path, qtbot):
    """The active version's card removed: `library list` starred the bundled model and did not
    list the version; the Models dialog said the bundled model was in use with Use disabled,
    while Remove of the damaged row answered that it was in use."""
    from inspector.gui.model_manager import ModelManagerDialog
    from inspector.library import BUNDLED, format_versions

    lib = ModelLibrary(tmp_path / "lib")
    v1 = lib.activate(lib.add(fake_bundle(tmp_path / "b1")))
    (v1 / "model_card.json").unlink()
    text = format_versions(lib)
    line = next(ln for ln in text.splitlines() if v1.name in ln)
    assert line.startswith("*") and "DAMAGED" in line
    assert not next(ln for ln in text.splitlines() if BUNDLED in ln).startswith("*")
    d = ModelManagerDialog(lib)
    qtbot.addWidget(d)
    d.select(v1.name)
    assert "in use" in d.table.item(d.table.currentRow(), 0).text()
    assert not d.remove_button.isEnabled()
    d.select(BUNDLED)
    assert d.use_button.isEnabled() and d.table.item(d.table.currentRow(), 0).text() == ""


def test_a_library_that_cannot_be_listed_still_opens_the_dialog(tmp_path, qtbot, monkeypatch):
    """A library folder without the right to list it (or a share gone): the dialog raised, and a
    switch was saved while the window stayed on the old model."""
    from inspector.gui.model_manager import ModelManagerDialog

    lib = ModelLibrary(tmp_path / "lib")
    lib.add(fake_bundle(tmp_path / "b1"))

    def no_listing(self):
        raise PermissionError(13, "Permission denied", str(self.root))

    monkeypatch.setattr(ModelLibrary, "scan", no_listing)
    d = ModelManagerDialog(lib)
    qtbot.addWidget(d)
    assert "cannot be read" in d.status.text() and d.table.rowCount() == 1
    with qtbot.waitSignal(d.model_selected, timeout=2000):   # emitted before the refresh
        d._emit(None, "Switched")


def test_a_bundle_whose_model_gives_another_number_of_classes_is_refused(tmp_path, capsys):
    """Card of 2 classes, classifier of 3: `add --activate` put it into use (exit 0), and every
    later start fell back to the bundled model."""
    import numpy as np

    src = fake_bundle(tmp_path / "b")
    np.save(src / "classifier_kernel.npy", np.zeros((64, 3), np.float32))
    lib = ModelLibrary()
    with pytest.raises(BundleError, match="gives 3 classes, its model card names 2"):
        lib.add(src)
    assert main(["add", str(src), "--activate"]) != 0
    assert "gives 3 classes" in capsys.readouterr().err and lib.active_name() is None
    np.save(src / "classifier_kernel.npy", np.zeros((64, 2), np.float32))
    assert lib.activate(lib.add(src)) is not None
