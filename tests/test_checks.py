"""training.checks: the problem report before training, and ``python -m training check``."""
import shutil
from pathlib import Path

import pytest
from PIL import Image

from synth import make_dataset, texture
from training import cli
from training.checks import ERROR, INFO, WARNING, Sample, find_problems


def codes(report, severity=None):
    return [p.code for p in report.problems if severity is None or p.severity == severity]


def test_clean_folder_has_no_errors(tmp_path):
    root = make_dataset(tmp_path / "d", per_class=6)
    report = find_problems(root)
    assert report.ok
    assert report.class_names == ["crazing", "inclusion", "patches"]
    assert report.counts == {"crazing": 6, "inclusion": 6, "patches": 6}
    # six per class is enough to train but few: a warning, not an error
    assert codes(report, WARNING) == ["few"]


def test_unreadable_file_is_named(tmp_path):
    root = make_dataset(tmp_path / "d", per_class=6)
    bad = root / "crazing" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    truncated = root / "patches" / "cut.png"
    truncated.write_bytes((root / "patches" / "pa_0.png").read_bytes()[:200])
    report = find_problems(root)
    assert not report.ok
    unreadable = [p for p in report.errors if p.code == "unreadable"]
    assert len(unreadable) == 1
    assert set(unreadable[0].files) == {str(bad), str(truncated)}
    assert "crazing/broken.png" in unreadable[0].message   # named with its class folder
    assert report.counts["crazing"] == 6  # unreadable files are not counted
    assert report.ok_without_excludable and report.excludable_files == {str(bad), str(truncated)}
    assert str(bad) in report.format()
    # the header's count of files says how many the class table leaves out
    assert "2 unreadable, not counted below" in report.format().splitlines()[0]


def test_blank_and_one_pixel_images_are_named(tmp_path):
    import numpy as np

    root = make_dataset(tmp_path / "d", per_class=6)
    black, one = root / "crazing" / "black.png", root / "patches" / "one.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(black)
    Image.fromarray(np.full((1, 1), 90, np.uint8)).save(one)
    report = find_problems(root)
    blank = [p for p in report.problems if p.code == "blank"]
    assert len(blank) == 1 and blank[0].severity == WARNING
    assert set(blank[0].files) == {str(black), str(one)} and str(black) in report.format()
    assert report.ok and report.counts["crazing"] == 7   # a warning: they are still counted


def test_a_file_training_cannot_read_is_named_by_the_check(tmp_path):
    """A multi-page TIFF opens and loads in Pillow, but training refuses it: the check reads
    with training's decoder, so it names the file (and it can be left out) before training."""
    root = make_dataset(tmp_path / "d", per_class=6)
    a = Image.fromarray(texture(0, 64, seed=1))
    stack = root / "crazing" / "stack.tif"
    a.save(stack, save_all=True, append_images=[Image.fromarray(texture(0, 64, seed=2))])
    report = find_problems(root)
    [unreadable] = [p for p in report.errors if p.code == "unreadable"]
    assert unreadable.files == [str(stack)] and "multi-page" in report.format()
    assert report.ok_without_excludable and report.excludable_files == {str(stack)}


def test_duplicate_across_classes_is_an_error_within_a_class_a_note(tmp_path):
    root = make_dataset(tmp_path / "d", per_class=6)
    shutil.copy(root / "crazing" / "cr_1.png", root / "inclusion" / "same.png")
    shutil.copy(root / "patches" / "pa_2.png", root / "patches" / "again.png")
    report = find_problems(root)
    conflict = [p for p in report.errors if p.code == "conflicting-duplicate"]
    assert len(conflict) == 1
    assert set(conflict[0].files) == {str(root / "crazing" / "cr_1.png"),
                                      str(root / "inclusion" / "same.png")}
    assert "crazing/cr_1.png" in conflict[0].message
    same = [p for p in report.problems if p.code == "duplicate"]
    assert same and same[0].severity == INFO
    assert str(root / "patches" / "again.png") in same[0].files


def test_too_few_and_unequal(tmp_path):
    root = make_dataset(tmp_path / "d", classes=("a", "b"), per_class=40)
    for f in sorted((root / "b").iterdir())[3:]:
        f.unlink()
    report = find_problems(root, min_per_class=5)
    few = [p for p in report.errors if p.code == "too-few"]
    assert few and "b (3)" in few[0].message
    assert not report.ok_without_excludable  # leaving files out does not help
    assert "unequal" in codes(report, WARNING)
    assert find_problems(root, min_per_class=3).ok


def test_layout_problems(tmp_path):
    root = make_dataset(tmp_path / "d", per_class=5)
    (root / "empty").mkdir()
    (root / "README.txt").write_text("notes")
    (root / "crazing" / "labels.csv").write_text("x")
    report = find_problems(root)
    empty = [p for p in report.errors if p.code == "empty-class"]
    assert empty and empty[0].files == [str(root / "empty")]
    ignored = [f for p in report.problems if p.code == "ignored-files" for f in p.files]
    assert str(root / "README.txt") in ignored and str(root / "crazing" / "labels.csv") in ignored
    assert find_problems(tmp_path / "nope").errors[0].code == "missing-folder"
    one = make_dataset(tmp_path / "one", classes=("a",), per_class=5)
    assert codes(find_problems(one), ERROR) == ["one-class"]


def test_a_class_named_like_a_verdict_is_refused(tmp_path):
    """A class called "unknown" or "unsure" would read as the inspector's own verdicts; review
    refused such names typed in, the wizard took them from folder names."""
    from inspector.session import UNKNOWN, UNSURE
    from training.checks import VERDICT_WORDS

    assert set(VERDICT_WORDS) == {UNKNOWN, UNSURE}
    root = make_dataset(tmp_path / "d", classes=("pits", "Unknown", " scale ", "nul"), per_class=5)
    report = find_problems(root)
    [named] = [p for p in report.errors if p.code == "verdict-name"]
    assert "Unknown" in named.message and "rename the folder" in named.message
    [spaced] = [p for p in report.warnings if p.code == "spaced-name"]
    assert "' scale '" in spaced.message and "'nul'" in spaced.message
    # names --classes cannot give back, or that a spreadsheet would run as a formula
    root = make_dataset(tmp_path / "e", classes=("pits", "a,b", "=cmd", "-dash", "new\nline"),
                        per_class=5)
    [odd] = [p for p in find_problems(root).warnings if p.code == "odd-name"]
    assert all(repr(c) in odd.message for c in ("a,b", "=cmd", "-dash", "new\nline"))
    assert "'pits'" not in odd.message


def test_mixed_sizes_and_modes_and_class_linked_format(tmp_path):
    root = make_dataset(tmp_path / "d", classes=("a", "b", "c"), per_class=5)
    # class c becomes RGB JPEG at another size: format, mode and size each tell it apart
    for f in list((root / "c").iterdir()):
        Image.open(f).convert("RGB").resize((96, 96)).save(f.with_suffix(".jpg"), quality=90)
        f.unlink()
    # class a gets one non-square image
    Image.fromarray(texture(0, 64)).resize((128, 64)).save(root / "a" / "wide.png")
    report = find_problems(root, input_size=200)
    warn = codes(report, WARNING)
    assert {"class-linked-file-format", "class-linked-colour-mode",
            "class-linked-image-size", "not-square"} <= set(warn)
    linked = next(p for p in report.problems if p.code == "class-linked-file-format")
    assert "c: JPEG" in linked.message
    assert "enlarged" in codes(report, INFO)
    assert report.ok  # warnings do not stop training


def test_mixed_but_not_class_linked_is_a_note(tmp_path):
    root = make_dataset(tmp_path / "d", classes=("a", "b"), per_class=6)
    for cls in ("a", "b"):
        f = sorted((root / cls).iterdir())[0]
        Image.open(f).convert("RGB").save(f.with_suffix(".jpg"))
        f.unlink()
    report = find_problems(root)
    assert "mixed-file-format" in codes(report, INFO)
    assert "mixed-colour-mode" in codes(report, INFO)
    assert not [c for c in codes(report) if c.startswith("class-linked")]
    assert "colour" not in codes(report)   # grey pixels in RGB JPEG files


def test_colour_images_get_a_note_that_the_model_learns_their_colour(tmp_path):
    import numpy as np

    root = make_dataset(tmp_path / "d", classes=("a", "b"), per_class=6)
    files = sorted(root.rglob("*.png"))

    def tint(f):
        a = np.asarray(Image.open(f).convert("RGB")).astype(int)
        Image.fromarray(np.clip(a + [15, 0, -15], 0, 255).astype(np.uint8)).save(f)

    tint(files[0])   # 1 of 12: under a tenth
    assert "colour" not in codes(find_problems(root))
    tint(files[7])
    report = find_problems(root)
    assert "colour" in codes(report, INFO)
    assert "2 of 12 image(s) are in colour" in report.format()
    assert "class-linked-colour" not in codes(report)   # both classes have both
    for f in files[6:]:   # class b all in colour, class a all grey but one: not linked
        if f != files[7]:
            tint(f)
    assert "class-linked-colour" not in codes(find_problems(root))
    a = sorted((root / "a").iterdir())[0]
    Image.open(a).convert("L").convert("RGB").save(a)   # class a all grey now
    report = find_problems(root)
    assert "class-linked-colour" in codes(report, WARNING)
    assert "a: grey" in report.format() and "b: colour" in report.format()
    Image.open(a).convert("L").save(a)   # a grey file mode too: one warning, not two
    assert "class-linked-colour-mode" not in codes(find_problems(root))


def test_sample_list_and_model_classes(tmp_path):
    root = make_dataset(tmp_path / "d", classes=("crazing", "scratches"), per_class=6)
    pairs = [(p, p.parent.name) for p in sorted(root.rglob("*.png"))]
    report = find_problems(pairs + pairs[:2], model_classes=["scratches", "crazing", "patches"])
    assert report.counts == {"crazing": 6, "scratches": 6}  # listed twice counts once
    assert not report.same_classes and report.new_classes == []
    assert "fewer-classes" in codes(report, INFO)
    same = find_problems([Sample(Path(p), c) for p, c in pairs],
                         model_classes=["scratches", "crazing"])
    assert same.same_classes
    assert same.training_class_names() == ("scratches", "crazing")  # the model's order
    assert "Same classes as the current model" in same.format()


def test_cancel(tmp_path):
    root = make_dataset(tmp_path / "d", per_class=3)
    with pytest.raises(InterruptedError):
        find_problems(root, should_stop=lambda: True)


def test_cli_check_exit_codes(tmp_path, capsys):
    root = make_dataset(tmp_path / "d", per_class=6)
    assert cli.main(["check", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "crazing" in out and "0 error(s)" in out
    assert cli.main(["check", "--data", str(root), "--min-per-class", "7"]) == 2
    assert "fewer than 7 usable images" in capsys.readouterr().out
    (root / "crazing" / "bad.bmp").write_bytes(b"BM garbage")
    assert cli.main(["check", "--data", str(root)]) == 2
    assert str(root / "crazing" / "bad.bmp") in capsys.readouterr().out


def test_checks_and_training_list_the_same_files(tmp_path):
    from training.checks import scan_folder
    from training.data import scan_dataset

    root = make_dataset(tmp_path / "d", per_class=4)
    shutil.copy(root / "crazing" / "cr_0.png", root / "crazing" / ".cr_copy.png")  # hidden file
    (root / "inclusion" / ".thumbs").mkdir()
    shutil.copy(root / "inclusion" / "in_0.png", root / "inclusion" / ".thumbs" / "in_0.png")
    (root / "patches" / "lot 2").mkdir()
    shutil.copy(root / "patches" / "pa_0.png", root / "patches" / "lot 2" / "pa_9.png")
    (root / ".trash").mkdir()                                                   # hidden class
    shutil.copy(root / "patches" / "pa_1.png", root / ".trash" / "pa_1.png")
    samples, _ = scan_folder(root)
    ds = scan_dataset(root)
    assert sorted(str(s.path) for s in samples) == sorted(str(p) for p in ds.files)
    assert len(ds.files) == 13 and ds.class_names == ["crazing", "inclusion", "patches"]


def test_class_folders_that_differ_only_in_case_are_refused(tmp_path):
    """A hostile-input audit: "Scratches" and "scratches" (or an accented name stored two ways,
    as a Mac writes it) became two classes of one defect, and on Windows one staged folder."""
    root = make_dataset(tmp_path / "d", classes=("Scratches", "scratches", "pits"), per_class=5)
    [clash] = [p for p in find_problems(root).errors if p.code == "case-name"]
    assert "'Scratches' and 'scratches'" in clash.message and "'pits'" not in clash.message
    root = make_dataset(tmp_path / "e", classes=("Zu\u0308nder", "z\u00fcnder", "pits"), per_class=5)
    assert [p.code for p in find_problems(root).errors if p.code == "case-name"] == ["case-name"]
    root = make_dataset(tmp_path / "f", classes=("scratches", "pits"), per_class=5)
    assert not [p for p in find_problems(root).errors if p.code == "case-name"]


def test_a_class_folder_given_as_the_data_folder_is_named_as_such(tmp_path):
    root = make_dataset(tmp_path / "d", per_class=3)
    report = find_problems(root / "crazing")
    text = report.format()
    assert not report.ok and "no images found" in text
    assert "if crazing is one class's folder, give the folder that holds the class folders" in text


def test_a_class_folder_that_cannot_be_listed_is_an_error(tmp_path, monkeypatch):
    """Not "a class folder without images", and not images silently missing from training."""
    import os

    root = make_dataset(tmp_path / "d", classes=("crazing", "inclusion", "patches"), per_class=6,
                        size=48)
    locked = root / "patches"
    real = os.scandir

    def scandir(path="."):
        if os.path.abspath(os.fspath(path)) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = find_problems(root)
    codes = [p.code for p in report.errors]
    assert codes == ["unlisted-folder"], report.format()
    assert str(locked) in report.errors[0].message and "permission denied" in report.errors[0].message


def _resize_all(root, size, only=None):
    for f in sorted(f for f in root.rglob("*") if f.is_file())[:only]:
        Image.open(f).convert("L").resize(size).save(f)


def test_small_images_note_the_size_the_wizard_trains_at(tmp_path):
    """The retraining wizard trains images smaller than the model's input at their own size
    (``native``), the size its settings choose (the median shorter side, down to a multiple of
    8): the note says so and gives it, rather than that they are enlarged."""
    from inspector.retrain import median_side, suggest_settings

    root = make_dataset(tmp_path / "d", classes=("a", "b"), per_class=5, size=64)
    _resize_all(root, (70, 90))            # shorter side 70: trained at 64
    plain = find_problems(root, input_size=200)
    assert "enlarged" in codes(plain, INFO) and "native-size" not in codes(plain)
    native = find_problems(root, input_size=200, native=True)
    assert "enlarged" not in codes(native)
    note = next(p for p in native.problems if p.code == "native-size")
    chosen = suggest_settings({"a": 5, "b": 5}, 0.01, image_side=median_side(native)).input_size
    assert chosen == 64
    assert note.severity == INFO and f"trained at {chosen}x{chosen}" in note.message
    # strips longer than the input but narrower: no image is "smaller", yet they train at 128
    _resize_all(root, (256, 128))
    note = next(p for p in find_problems(root, input_size=200, native=True).problems
                if p.code == "native-size")
    assert "trained at 128x128" in note.message and "smaller than the input:" not in note.message
    # a median shorter side at or above the input: they are read at the input's size
    assert "native-size" not in codes(find_problems(root, input_size=128, native=True))
    _resize_all(root, (20, 20))            # under the smallest size it trains at
    note = next(p for p in find_problems(root, input_size=200, native=True).problems
                if p.code == "native-size")
    assert "trained at 32x32" in note.message and "enlarged" in note.message


def test_not_square_says_how_training_reads_them(tmp_path):
    """The data set's median long/short side decides, as training.card.training_view decides
    for the model: mostly square images get their few wide ones made square by reflection,
    mostly non-square images are all stretched."""
    from training.card import training_view

    root = make_dataset(tmp_path / "d", classes=("a", "b"), per_class=5, size=64)

    def warning_and_view():
        report = find_problems(root)
        hw = [(i.height, i.width) for i in report.info.values()]
        return (next(p for p in report.problems if p.code == "not-square"),
                training_view(hw, 200)["square"])

    _resize_all(root, (192, 64), only=4)   # 4 of 10 at 3:1: the mean is far from square,
    warn, square = warning_and_view()      # the median is not
    assert square and "reflection" in warn.message and "stretched" not in warn.message
    assert len(warn.files) == 4
    _resize_all(root, (77, 64))            # every one 1.2:1 (not "far from square") ...
    _resize_all(root, (192, 64), only=1)   # ... and one at 3:1
    warn, square = warning_and_view()
    assert not square and "stretched" in warn.message and "1.20:1" in warn.message
    assert len(warn.files) == 1


def test_a_data_folder_one_level_above_the_class_folders_is_named(tmp_path):
    """lines/line1/{pits,scale,streaks} and lines/line2/{...}: given "lines", the classes would
    be line1 and line2; said, with what the sub-folders look like. A class folder with a
    sub-folder or two of its own (a day's images) is not."""
    for line, seed in (("line1", 0), ("line2", 1)):
        for k, c in enumerate(("pits", "scale", "streaks")):
            d = tmp_path / "lines" / line / c
            d.mkdir(parents=True)
            for i in range(6):
                Image.fromarray(texture(k, 32, seed=seed * 100 + i)).save(d / f"{c}_{i}.png")
    report = find_problems(tmp_path / "lines")
    nested = [p for p in report.problems if p.code == "nested-classes"]
    assert nested and nested[0].severity == WARNING
    assert "line1, line2" in nested[0].message and "pits, scale, streaks" in nested[0].message
    assert "nested-classes" not in codes(find_problems(tmp_path / "lines" / "line1"))
    # class folders holding day folders of their own: not a layout one level too high
    days = make_dataset(tmp_path / "days", classes=("a", "b"), per_class=6)
    for c in ("a", "b"):
        for d in ("monday", "2026-12-01", "2026-12-02"):
            (days / c / d).mkdir()
        for k, f in enumerate(sorted((days / c).glob("*.png"))):
            f.rename(days / c / ("monday", "2026-12-01", "2026-12-02")[k % 3] / f.name)
    assert "nested-classes" not in codes(find_problems(days))
