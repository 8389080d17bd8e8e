"""inspector.retrain: the wizard's Qt-free logic (default settings for a time budget, time
estimates, gathering and staging images)."""
import re
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from inspector import retrain
from synth import make_dataset, short_budget_speeds
from training.checks import find_problems
from training.data import scan_dataset, stratified_split

CARD = {"name": "SSDC-MiniNet", "version": "1.0.0", "input_size": 200,
        "class_names": ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale",
                        "scratches"]}
# a plant data set like the one the defaults must handle: seven new classes, unequal sizes
PLANT = {"c1": 400, "c2": 300, "c3": 250, "c4": 120, "c5": 110, "c6": 100, "c7": 80}


def test_split_counts_match_stratified_split(tmp_path):
    root = make_dataset(tmp_path / "d", classes=("a", "b", "c"), per_class=1)
    for cls, n in (("a", 13), ("b", 7), ("c", 3)):
        for k in range(1, n):
            shutil.copy(root / cls / f"{cls[:2]}_0.png", root / cls / f"x{k}.png")
            # make files differ so that they are not kept together as duplicates
            with open(root / cls / f"x{k}.png", "ab") as f:
                f.write(bytes([k]))
    ds = scan_dataset(root)
    tr, va, te = stratified_split(ds, 0.1, 0.1)
    assert retrain.split_counts(ds.counts(), 0.1, 0.1) == (len(tr), len(va), len(te))


def test_suggest_settings_fits_the_budget_and_fine_tunes():
    spi = 1 / 70  # images per second measured on the 2-core CPU
    c = retrain.suggest_settings(PLANT, spi, current_bundle="/models/current", current_card=CARD,
                                 class_names=sorted(PLANT))
    assert c.init_bundle == "/models/current"  # starts from the current model
    assert c.input_size == 200  # the model's input size, whatever the images' size
    assert c.class_names == tuple(sorted(PLANT))
    assert c.augment
    est = retrain.estimate_seconds(PLANT, c, spi)
    # training ends on time: the estimate is the budget, whatever the epochs
    assert est == pytest.approx(retrain.DEFAULT_BUDGET_SECONDS, abs=0.1)
    assert retrain.MIN_EPOCHS <= c.epochs <= retrain.MAX_EPOCHS
    # the epochs are what the measured speed buys: one more would not fit
    from dataclasses import replace
    by_epochs = replace(c, time_budget_s=0.0)
    assert retrain.estimate_seconds(PLANT, by_epochs, spi) <= retrain.DEFAULT_BUDGET_SECONDS
    more = retrain.estimate_seconds(PLANT, replace(by_epochs, epochs=c.epochs + 1), spi)
    assert more > retrain.DEFAULT_BUDGET_SECONDS or c.epochs == retrain.MAX_EPOCHS
    # the whole run, with the fixed costs, stays within 20 minutes
    assert est < 20 * 60


def test_suggest_settings_slow_fast_and_scratch():
    slow = retrain.suggest_settings(PLANT, 1 / 5, current_bundle="m", current_card=CARD,
                                    smaller_when_short=False)
    assert slow.epochs == retrain.MIN_EPOCHS  # never fewer, even on a very slow PC
    # ... and the time given is what MIN_EPOCHS take there (over the budget, and said so)
    per_epoch = retrain.epoch_seconds(PLANT, slow, 1 / 5)
    checking = retrain.check_seconds(PLANT, slow, 1 / 5)   # the augmentation check on top
    assert 0 < checking < 4 * per_epoch      # its clean epochs skip the augmentation
    assert slow.time_budget_s == pytest.approx(retrain.MIN_EPOCHS * per_epoch + checking, abs=0.1)
    assert retrain.estimate_seconds(PLANT, slow, 1 / 5) > retrain.DEFAULT_BUDGET_SECONDS
    fast = retrain.suggest_settings(PLANT, 1 / 5000, current_bundle="m", current_card=CARD)
    assert fast.epochs == retrain.MAX_EPOCHS
    assert fast.time_budget_s == pytest.approx(
        retrain.MAX_EPOCHS * retrain.epoch_seconds(PLANT, fast, 1 / 5000)
        + retrain.check_seconds(PLANT, fast, 1 / 5000), abs=0.1)
    scratch = retrain.suggest_settings(PLANT, 1 / 5000, current_bundle="m", current_card=CARD,
                                       from_scratch=True)
    assert scratch.init_bundle is None and scratch.epochs > fast.epochs
    none = retrain.suggest_settings(PLANT, 1 / 70)  # no current model: from scratch
    assert none.init_bundle is None and none.input_size == 200


def test_same_classes_keep_head_with_a_gentler_rate():
    counts = {c: 100 for c in CARD["class_names"]}
    same = retrain.suggest_settings(counts, 1 / 70, current_bundle="m", current_card=CARD,
                                    class_names=CARD["class_names"])
    new = retrain.suggest_settings(PLANT, 1 / 70, current_bundle="m", current_card=CARD)
    assert same.learning_rate < new.learning_rate
    assert same.class_names == tuple(CARD["class_names"])


def test_small_data_sets_get_smaller_batches():
    tiny = retrain.suggest_settings({"a": 20, "b": 20}, 1 / 70, current_bundle="m",
                                    current_card=CARD)
    assert tiny.batch_size == 16
    assert retrain.suggest_settings(PLANT, 1 / 70, current_bundle="m",
                                    current_card=CARD).batch_size == 32


def test_gather_and_stage(tmp_path):
    main = make_dataset(tmp_path / "plant", classes=("a", "b"), per_class=5)
    # the "original set": a and b are byte-identical to the plant's (same synthetic textures)
    extra = make_dataset(tmp_path / "orig", classes=("a", "b", "c"), per_class=5)
    samples, problems = retrain.gather_samples([main, extra])
    assert not problems and len(samples) == 25
    assert find_problems(samples).ok  # duplicates within a class are fine
    verdicts = [(main / "a" / "a_0.png", "c"), (tmp_path / "orig" / "c" / "c_1.png", "c")]
    samples, problems = retrain.gather_samples([main, extra], verdicts)
    assert not problems and len(samples) == 27
    report = find_problems(samples)
    # a/a_0.png was relabelled as c in review: a conflict naming the files
    conflict = [p for p in report.problems if p.code == "conflicting-duplicate"]
    assert conflict and str(main / "a" / "a_0.png") in conflict[0].files
    usable = report.usable_samples(report.excludable_files)
    digests = {p: i.digest for p, i in report.info.items()}
    out, origin = retrain.stage_dataset(usable, tmp_path / "stage", digests)
    staged = scan_dataset(out)
    assert staged.class_names == ["a", "b", "c"]
    # byte-identical files within a class are staged once; a_0 is left out everywhere
    assert staged.counts() == {"a": 4, "b": 5, "c": 5}
    f = staged.files[0]
    assert os.path.samefile(f, origin[str(f)])  # hard links on one file system
    assert retrain.training_folder(report, [main], []) == main
    assert retrain.training_folder(report, [main, extra], []) is None
    assert retrain.training_folder(report, [main], verdicts) is None
    assert retrain.training_folder(report, [main], [], [str(main / "a" / "a_0.png")]) is None


def test_bad_verdict_class_name(tmp_path):
    root = make_dataset(tmp_path / "d", classes=("a", "b"), per_class=3)
    _, problems = retrain.gather_samples([], [(root / "a" / "a_0.png", "../x")])
    assert problems and problems[0].code == "bad-class-name"


def test_a_verdict_class_left_out_with_its_files_leaves_the_training_classes(tmp_path):
    """Verdicts under a name that cannot be a class ("a/b", from a journal written elsewhere),
    their files left out: the class goes with them (training asked for its folder). A label
    with a trailing space is the folder's class, not a second one beside it."""
    root = make_dataset(tmp_path / "d", classes=("a", "roll mark"), per_class=4)
    other = make_dataset(tmp_path / "o", classes=("x",), per_class=3)
    verdicts = ([(p, "a/b") for p in sorted((other / "x").glob("*.png"))]
                + [(other / "x" / "x_0.png", "roll mark ")])
    samples, problems = retrain.gather_samples([root], verdicts)
    assert [p.code for p in problems] == ["bad-class-name"] and len(problems[0].files) == 3
    report = find_problems(samples)
    report.problems.extend(problems)   # as the wizard and `inspector retrain` join them
    assert sorted(report.class_names) == ["a", "a/b", "roll mark"]
    assert report.training_class_names(problems[0].files) == ("a", "roll mark")
    assert report.training_class_names() == ("a", "a/b", "roll mark")
    assert report.counts["roll mark"] == 5
    for typed in ("unsure", " ", ".hidden", "con"):
        _, bad = retrain.gather_samples([], [(root / "a" / "a_0.png", typed)])
        assert bad and bad[0].code == "bad-class-name", typed


def test_work_dirs_are_private_and_stale_ones_cleaned(tmp_path):
    d1 = retrain.work_dir()
    d2 = retrain.work_dir()
    assert d1 != d2 and d1.parent == d2.parent and d1.is_dir()
    old = d1.parent / "old"          # an unlocked folder of an older version
    old.mkdir()
    os.utime(old, (0, 0))
    crashed = d1.parent / "crashed"  # its process died: the lock file is there, nobody holds it
    crashed.mkdir()
    (crashed / retrain.LOCK_NAME).write_bytes(b"")
    # another process's live session, however old its folder looks, is left alone
    import subprocess
    import sys
    other = d1.parent / "other"
    code = ("import sys; from pathlib import Path; from inspector import retrain; "
            "d = retrain.work_dir(Path(sys.argv[1])); print(d, flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(other)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        live = Path(proc.stdout.readline().strip())
        os.utime(live, (0, 0))
        retrain.clean_stale_work_dirs(other)
        assert live.is_dir()
    finally:
        proc.communicate("")
    retrain.clean_stale_work_dirs(other)       # its process has ended: now it is stale
    assert not live.exists()
    retrain.clean_stale_work_dirs()
    assert not old.exists() and not crashed.exists() and d1.is_dir() and d2.is_dir()
    retrain.remove_work_dir(d1)
    assert not d1.exists()


def test_a_model_trained_by_a_run_that_died_is_kept_in_the_library(tmp_path, stand_in_bundle):
    """A run killed after its training (its model whole in the work folder, not yet in the
    library) loses nothing: the next run's clean-up adds the model, not in use, and says so;
    the command's (``bundle``) and the wizard's (``run-*/bundle``) alike."""
    import shutil

    from inspector.library import ModelLibrary

    base = retrain.work_dir().parent
    cli_run = base / "20261207-011500-abc123"
    wizard_run = base / "20261207-020000-def456"
    shutil.copytree(stand_in_bundle, cli_run / "bundle")
    shutil.copytree(stand_in_bundle, wizard_run / "run-020100-0" / "bundle")
    (wizard_run / "run-020100-0" / "data").mkdir()
    half = base / "20261207-030000-0a0b0c"   # killed during its training: nothing whole
    (half / "bundle.tmp").mkdir(parents=True)
    for d in (cli_run, wizard_run, half):
        (d / retrain.LOCK_NAME).write_bytes(b"")   # their processes died
    library = ModelLibrary(tmp_path / "lib")
    said = retrain.clean_stale_work_dirs(keep=lambda b: retrain.keep_in_library(b, library))
    versions = library.versions()
    assert len(said) == 2 and len(versions) == 2 and library.active_path() is None
    assert "started 2026-12-07 01:15" in said[0] and "started 2026-12-07 02:00" in said[1]
    assert all(f"was kept as {v.path.name}" in line and "not in use" in line
               for line, v in zip(said, sorted(versions, key=lambda v: v.path.name)))
    assert not cli_run.exists() and not wizard_run.exists() and not half.exists()


def test_a_given_up_run_s_folder_goes_when_its_last_step_ends_and_keeps_nothing(
        tmp_path, stand_in_bundle):
    """A wizard cancelled while a step that cannot stop (an export) outlasts the close's wait:
    its folder is not pulled from under the step, but deleted once it ends; should the program
    end first, the next start's clean-up deletes it without keeping its model (the user
    discarded it)."""
    import shutil
    import threading

    from inspector.library import ModelLibrary

    work = retrain.work_dir()
    step_may_end = threading.Event()

    def export():   # still writing into the folder after the wizard has closed
        assert step_may_end.wait(10)
        shutil.copytree(stand_in_bundle, work / "run-1" / "bundle")

    step = threading.Thread(target=export)
    step.start()
    remover = retrain.remove_work_dir_after(work, [step])
    assert work.is_dir() and (work / retrain.DISCARDED_NAME).exists()
    step_may_end.set()
    remover.join(10)
    assert not step.is_alive() and not work.exists()
    # the program ended before the step: the next start deletes the folder, keeps nothing
    base = work.parent
    run = base / "20261207-040000-0d0e0f"
    shutil.copytree(stand_in_bundle, run / "run-1" / "bundle")
    (run / retrain.LOCK_NAME).write_bytes(b"")
    (run / retrain.DISCARDED_NAME).write_bytes(b"")
    library = ModelLibrary(tmp_path / "lib")
    assert retrain.clean_stale_work_dirs(keep=lambda b: retrain.keep_in_library(b, library)) == []
    assert not run.exists() and library.versions() == []


def test_a_model_the_library_cannot_take_stays_where_it_is(tmp_path, stand_in_bundle):
    import shutil

    base = retrain.work_dir().parent
    run = base / "20261207-011500-abc123"
    shutil.copytree(stand_in_bundle, run / "bundle")
    (run / retrain.LOCK_NAME).write_bytes(b"")

    def full_disk(bundle):
        raise OSError(28, "No space left on device")

    said = retrain.clean_stale_work_dirs(keep=full_disk)
    assert len(said) == 1 and "No space left" in said[0] and str(run / "bundle") in said[0]
    assert (run / "bundle" / "model_card.json").is_file()


def test_a_disk_without_room_for_the_new_model_is_said_before_training(
        tmp_path, stand_in_bundle, capsys, monkeypatch):
    """A full disk failed only when the trained model was written, minutes later, with "[Errno
    28] No space left on device" naming no file (an audit): the room is checked first, and an
    error without a file name gets the folder."""
    from inspector.retrain import workdirs

    size = workdirs.folder_size(stand_in_bundle)
    assert size > 0
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(workdirs.shutil, "disk_usage",
                        lambda p: usage._replace(free=2 * size + workdirs.SPACE_MARGIN - 1))
    said = workdirs.space_problem(tmp_path, stand_in_bundle)
    assert said and str(tmp_path) in said and "MB free" in said
    monkeypatch.setattr(workdirs.shutil, "disk_usage",
                        lambda p: usage._replace(free=2 * size + workdirs.SPACE_MARGIN))
    assert workdirs.space_problem(tmp_path, stand_in_bundle) is None
    monkeypatch.setattr(workdirs.shutil, "disk_usage", lambda p: usage._replace(free=10 * 2**20))

    from training import train as train_module
    monkeypatch.setattr(train_module, "train",
                        lambda *a, **k: pytest.fail("trained on a disk without room"))
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale"), per_class=8)
    code = retrain.main(["--data", str(root), "--current", str(stand_in_bundle), "--epochs", "1",
                         "--rate", "500"])
    err = capsys.readouterr().err
    assert code == 2 and "MB free on its disk; the new model needs about" in err, err
    assert "Traceback" not in err
    assert not any((tmp_path / "home" / retrain.WORK_DIR_NAME).glob("*/bundle"))

    with pytest.raises(OSError, match=r"No space left on device \(writing in /w\)"):
        with retrain.failures_named(Path("/w")):
            raise OSError(28, "No space left on device")
    with pytest.raises(OSError) as named:   # one that names its file is left as it is
        with retrain.failures_named(Path("/w")):
            raise OSError(28, "No space left on device", "/w/model.keras")
    assert named.value.filename == "/w/model.keras"


@pytest.mark.slow
def test_command_line_retrains_into_the_library(tmp_path, stand_in_bundle, capsys, monkeypatch):
    from inspector.library import ModelLibrary

    # one epoch on 16 images need not make a usable model; the refusal has its own tests
    monkeypatch.setattr(retrain.SplitEvaluation, "problems", property(lambda self: []))
    from training.card import ModelCard
    monkeypatch.setattr(ModelCard, "usability_problems", lambda self: [])   # the library's
    # the augmentation check (two more short trainings) has its own tests in test_transfer.py
    from training import transfer
    monkeypatch.setattr(transfer, "check_needed", lambda *a, **k: False)
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale"), per_class=8)
    (root / "pits" / "broken.png").write_bytes(b"nope")
    args = ["--data", str(root), "--current", str(stand_in_bundle), "--epochs", "1",
            "--rate", "500"]
    assert retrain.main(args) == 2  # the unreadable file stops it
    out, err = capsys.readouterr()
    assert str(root / "pits" / "broken.png") in out
    assert "or leave those 1 file(s) out with --leave-out-bad-files" in err
    assert retrain.main(args + ["--leave-out-bad-files", "--activate", "--name", "Plant"]) == 0
    out = capsys.readouterr().out
    assert "assumed (--rate) 500 training images/s at 64x64; 1 epoch" in out
    assert "same as: python -m training train" in out and "--init" in out
    assert "saved as plant-v1" in out and "now using plant-v1" in out
    assert "not in use" not in out   # put into use: never said to be out of use first
    lib = ModelLibrary()
    [v] = lib.versions()
    assert lib.active_path() == v.path and v.class_names == ["pits", "scale"]
    assert v.card["training"]["config"]["input_size"] == 64
    # nothing left in the temporary folders
    assert not any((lib.root.parent / retrain.WORK_DIR_NAME).iterdir())

    # a library that cannot take the model (a full disk) does not lose it with the work folder
    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ModelLibrary, "add", full_disk)
    assert retrain.main(args + ["--leave-out-bad-files"]) == 2
    err = capsys.readouterr().err
    [kept] = (lib.root.parent / "kept-models").iterdir()
    assert (kept / "model.keras").is_file() and f"kept in {kept}" in err
    assert "No space left on device" in err


def test_estimate_arithmetic():
    """The estimate is fixed costs + reading + head-first + epochs x epoch + testing, by hand."""
    from dataclasses import replace
    counts = {"a": 100, "b": 100}                  # 10% held out each: 160 / 20 / 20
    spi = 0.05
    c = retrain.suggest_settings(counts, spi, current_bundle="m", current_card=CARD)
    assert c.augment_check   # new classes: 2 x CHECK_EPOCHS epochs more, counted below
    checked = replace(c, epochs=10, val_fraction=0.1, test_fraction=0.1, time_budget_s=0.0)
    c = replace(checked, augment_check=False)
    assert retrain.split_counts(counts, 0.1, 0.1) == (160, 20, 20)
    assert retrain.augment_overhead(16) == pytest.approx(1.10, abs=0.01)   # measured at 16, 32
    assert retrain.augment_overhead(32) == pytest.approx(1.085, abs=0.01)
    epoch = (160 * spi * retrain.augment_overhead(c.batch_size)
             + 20 * spi * retrain.EVAL_COST)
    head = 180 * spi * retrain.HEAD_PER_IMAGE + retrain.HEAD_SECONDS
    assert retrain.fixed_seconds(spi, 200) == pytest.approx(
        retrain.FIXED_BASE_SECONDS + (retrain.FIXED_PER_RUN + retrain.FIXED_PER_IMAGE * 200) * spi)
    assert retrain.fixed_seconds(1 / 158, 200) < retrain.fixed_seconds(1 / 65, 200)  # faster PC
    assert retrain.fixed_seconds(spi, 100) < retrain.fixed_seconds(spi, 200)   # fewer images
    # a data set ten times smaller is not ten times quicker to export and test: the part per
    # run (small synthetic sets were estimated 8-19% low without it)
    assert retrain.fixed_seconds(spi, 20) > retrain.fixed_seconds(spi, 200) / 2
    whole = (retrain.fixed_seconds(spi, 200) + 200 * retrain.READ_SECONDS + head + 10 * epoch
             + 2 * 20 * spi * retrain.EVAL_COST)
    assert retrain.epoch_seconds(counts, c, spi) == pytest.approx(epoch)
    assert retrain.head_first_seconds(counts, c, spi) == pytest.approx(head)
    assert retrain.estimate_seconds(counts, c, spi) == pytest.approx(whole)
    from training.transfer import CHECK_EPOCHS
    clean_epoch = 160 * spi + 20 * spi * retrain.EVAL_COST   # the check's clean epochs
    assert retrain.estimate_seconds(counts, checked, spi) == pytest.approx(
        whole + CHECK_EPOCHS * (epoch + clean_epoch))
    # no head-first when the classes are kept or training starts from scratch
    same = replace(c, head_first=False)
    assert retrain.estimate_seconds(counts, same, spi) == pytest.approx(whole - head)
    assert retrain.head_first_seconds(counts, replace(c, init_bundle=None), spi) == 0
    # twice the speed: the epochs and the machine-dependent part of the fixed costs take half
    # as long; the base of the fixed costs, reading and the head's fit stay
    fast = retrain.estimate_seconds(counts, c, spi / 2)
    assert fast == pytest.approx(whole - (head - retrain.HEAD_SECONDS) / 2 - 10 * epoch / 2
                                 - 20 * spi * retrain.EVAL_COST
                                 - (retrain.FIXED_PER_RUN + retrain.FIXED_PER_IMAGE * 200)
                                 * spi / 2)
    # a time-budgeted run takes its budget in place of the epochs, at any speed
    timed = replace(c, time_budget_s=300.0)
    assert retrain.estimate_seconds(counts, timed, spi) == pytest.approx(whole - 10 * epoch + 300)
    assert retrain.estimate_seconds(counts, timed, spi / 2) == pytest.approx(
        fast - 10 * epoch / 2 + 300)


def test_a_short_budget_trains_smaller():
    """A fine-tune whose budget buys fewer than SHORT_BUDGET_EPOCHS epochs at the full size trains
    at SHORT_BUDGET_SIZE: about three times the epochs in the same time."""
    def suggest(speeds, **kw):
        return retrain.suggest_settings(PLANT, speeds, current_bundle="m", current_card=CARD,
                                        budget_seconds=200, **kw)

    full = suggest(1 / 110, smaller_when_short=False)
    assert full.input_size == 200 and full.epochs < retrain.SHORT_BUDGET_EPOCHS
    short = suggest(1 / 110)
    assert short.input_size == retrain.SHORT_BUDGET_SIZE == 128
    assert short.epochs >= 2 * full.epochs
    # the speed at 128 from the one measured at 200 until it is measured there; then that one
    scaled = retrain.seconds_per_image_at({200: 1 / 110}, 128)
    assert scaled == pytest.approx((128 / 200) ** retrain.SIZE_TIME_EXPONENT / 110)
    assert retrain.seconds_per_image_at({200: 1 / 110, 128: 1 / 200}, 128) == 1 / 200
    assert retrain.seconds_per_image_at(1 / 110, 128) == 1 / 110   # a number: at any size
    measured = suggest({200: 1 / 110, 128: 1 / 400})
    assert measured.input_size == 128 and measured.epochs > short.epochs
    assert retrain.estimate_seconds(PLANT, measured, 1 / 400) == pytest.approx(200, abs=0.1)
    # the decision rests on the full size's speed: measuring 128 does not undo it
    assert suggest({200: 1 / 110, 128: 1 / 10_000}).input_size == 128
    # a budget that buys enough epochs, from scratch, or images no larger: the full size
    assert suggest(1 / 2000).input_size == 200
    assert retrain.suggest_settings(PLANT, 1 / 110, budget_seconds=200).input_size == 200
    assert suggest(1 / 110, image_side=165).input_size == 128   # 160 otherwise
    # images only a little larger than 128 keep their size: 128 would buy few more epochs
    assert suggest(1 / 110, image_side=150).input_size == 144
    assert suggest(1 / 110, image_side=120).input_size == 120
    with pytest.raises(ValueError):
        retrain.seconds_per_image_at({}, 128)


def test_the_budget_follows_what_the_data_needs():
    """A fine-tune whose budget buys fewer than STRETCH_EPOCHS epochs gets more time, just
    enough for them and at most STRETCH_RATIO times the budget; not from scratch, not with
    ``stretch=False``, not when the budget buys enough."""
    counts = {c: 275 for c in CARD["class_names"]}            # NEU with two classes added back
    kw = dict(current_bundle="m", current_card=dict(CARD, class_names=CARD["class_names"][:4]),
              class_names=CARD["class_names"], image_side=128)
    spi = 1 / 60
    per_epoch = None
    for budget in (600, 900, 2000):
        exact = retrain.suggest_settings(counts, spi, budget_seconds=budget, stretch=False, **kw)
        c = retrain.suggest_settings(counts, spi, budget_seconds=budget, **kw)
        per_epoch = retrain.epoch_seconds(counts, exact, spi)
        est = retrain.estimate_seconds(counts, c, spi)
        if exact.epochs >= retrain.STRETCH_EPOCHS:            # enough: as it was
            assert c == exact
        elif exact.epochs + (retrain.STRETCH_RATIO - 1) * budget / per_epoch \
                >= retrain.STRETCH_EPOCHS:                    # just enough for them
            assert c.epochs == retrain.STRETCH_EPOCHS
            assert budget < est <= retrain.STRETCH_RATIO * budget
        else:                                                 # at most a third more
            assert exact.epochs < c.epochs < retrain.STRETCH_EPOCHS
            assert est == pytest.approx(retrain.STRETCH_RATIO * budget, abs=0.1)
    taken = [retrain.suggest_settings(counts, spi, budget_seconds=b, **kw).epochs
             for b in (600, 900, 2000)]
    assert taken[0] < taken[1] == retrain.STRETCH_EPOCHS < taken[2]   # each branch above
    scratch = dict(kw, current_bundle=None, current_card=None)
    assert retrain.suggest_settings(counts, spi, budget_seconds=600, **scratch) == \
        retrain.suggest_settings(counts, spi, budget_seconds=600, stretch=False, **scratch)


def test_defaults_native_size_class_weights_head_first_patience():
    c = retrain.suggest_settings(PLANT, 1 / 60, current_bundle="m", current_card=CARD,
                                 image_side=128)
    assert c.input_size == 128 and c.head_first and c.class_weighting == "deferred"
    assert c.patience == 0      # every planned epoch: the estimate is the time, not a bound
    assert c.augment_check      # new classes: the augmentation is checked first
    assert retrain.suggest_settings(PLANT, 1 / 60, current_bundle="m", current_card=CARD,
                                    image_side=257).input_size == 200
    same = retrain.suggest_settings({n: 50 for n in CARD["class_names"]}, 1 / 60,
                                    current_bundle="m", current_card=CARD,
                                    class_names=CARD["class_names"])
    assert not same.head_first
    assert not same.export_int8   # its export leaves the int8 file out (TrainConfig.export_int8)
    # every layer trains by default; with the early layers frozen (train --freeze-early) an
    # epoch's network part takes FROZEN_STEP_SHARE of the time, the augmentation's part does not
    assert not c.freeze_early and not same.freeze_early
    from dataclasses import replace
    frozen = replace(c, freeze_early=True)
    tr, va, _ = retrain.split_counts(PLANT, c.val_fraction, c.test_fraction)
    spi = 1 / 60
    assert retrain.epoch_seconds(PLANT, c, spi) - retrain.epoch_seconds(
        PLANT, frozen, spi) == pytest.approx(tr * spi * (1 - retrain.FROZEN_STEP_SHARE))
    assert retrain.median_side([(128, 128), (200, 100), (300, 400)]) == 128


@pytest.mark.slow
def test_dry_run_trains_at_the_images_own_size(tmp_path, stand_in_bundle, capsys):
    """48x48 images against a 64x64 model: the speed is measured at 48x48."""
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale"), per_class=8, size=48)
    assert retrain.main(["--data", str(root), "--current", str(stand_in_bundle),
                         "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "training images/s at 48x48" in out and "--size 48" in out
    assert "training at 48x48" in out and "new head is fitted first" in out
    assert "at most" not in out and "--patience 0" in out
    assert " of training (about" in out and "--time-budget-min" in out


def test_size_caps_the_training_size(tmp_path, stand_in_bundle, capsys):
    """--size: at most that size, rounded down to a multiple of 8 (a smaller size buys more
    epochs on a slow PC); never larger than the model's input or the images' own size."""
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale"), per_class=8, size=48)
    for size, expected in [("42", 40), ("100", 48)]:
        assert retrain.main(["--data", str(root), "--current", str(stand_in_bundle), "--rate",
                             "500", "--size", size, "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert f"training images/s at {expected}x{expected}" in out
        assert f"--size {expected} " in out


def test_a_short_budget_measures_the_smaller_size_too(tmp_path, stand_in_bundle, capsys,
                                                      monkeypatch):
    """The command measures at the full size; when that speed makes a short budget choose the
    smaller size, it measures there as well and says why it trains smaller (the 64x64 stand-in
    with SHORT_BUDGET_SIZE at 32 plays the 200x200 model and 128)."""
    from inspector.retrain import cli
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale"), per_class=8, size=64)
    measured = short_budget_speeds(monkeypatch, cli, {64: 0.2, 32: 0.05})
    args = ["--data", str(root), "--current", str(stand_in_bundle), "--budget-min", "0.5",
            "--dry-run"]
    assert retrain.main(args) == 0
    out = capsys.readouterr().out
    assert measured == [64, 32]
    # both speeds, the full size's first: --rate with it reproduces the run (below)
    assert "measured 5 training images/s at 64x64 and 20 at 32x32" in out and "--size 32 " in out
    assert "a short budget:" in out and "epochs at 64x64, so training at 32x32" in out
    epochs = re.search(r"--epochs (\d+)", out).group(1)
    measured.clear()   # --size: the user's size, not the rule's
    assert retrain.main(args + ["--size", "64"]) == 0
    out = capsys.readouterr().out
    assert measured == [64] and "at 64x64" in out and "a short budget" not in out
    measured.clear()   # --epochs: no budget to be short of
    assert retrain.main(args + ["--epochs", "3"]) == 0
    assert measured == [64] and "a short budget" not in capsys.readouterr().out
    measured.clear()   # --rate: the speed at the full size, carried over to 32
    assert retrain.main(args + ["--rate", "5"]) == 0
    out = capsys.readouterr().out
    assert measured == [] and "a short budget" in out
    assert "assumed (--rate) 5 training images/s at 64x64, about " \
        f"{5 / 0.5 ** retrain.SIZE_TIME_EXPONENT:.0f} at 32x32" in out
    measured.clear()   # --rate with both figures the measured run printed: its settings
    assert retrain.main(args + ["--rate", "5,20"]) == 0
    out = capsys.readouterr().out
    assert measured == [] and "assumed (--rate) 5 training images/s at 64x64 and 20 at 32x32" in out
    assert "--size 32 " in out and re.search(r"--epochs (\d+)", out).group(1) == epochs
    measured.clear()   # a budget the guessed speed already calls short: the full size first
    assert retrain.main(args[:4] + ["--budget-min", "0.05", "--dry-run"]) == 0
    capsys.readouterr()
    assert measured == [64, 32]


def test_dry_run_says_when_the_data_needs_more_than_the_budget(tmp_path, stand_in_bundle,
                                                               capsys):
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale"), per_class=8, size=64)
    # a PC of 8 training images/s: the fixed costs leave the 6 minutes too few epochs
    args = ["--data", str(root), "--current", str(stand_in_bundle), "--rate", "8",
            "--budget-min", "6", "--dry-run"]
    assert retrain.main(args) == 0
    out = capsys.readouterr().out
    assert "the data needs more epochs than 6 min buy" in out and "--exact-budget keeps" in out
    longer = int(re.search(r"--epochs (\d+)", out).group(1))
    assert retrain.main(args + ["--exact-budget"]) == 0
    out = capsys.readouterr().out
    assert "needs more epochs" not in out
    assert int(re.search(r"--epochs (\d+)", out).group(1)) < longer
    # a PC so slow that the run's fixed costs alone outlast the budget: said, not planned quietly
    assert retrain.main(args[:5] + ["1", "--budget-min", "6", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "6 min are too short at this PC's speed" in out


def test_a_model_trained_smaller_than_its_images_fine_tunes_at_their_scale():
    """One short-budget run (128 px from 200 px images) does not keep every later fine-tune
    at 128; a model trained at 128 because its images are 128 px stays there."""
    def full(tile, input_size=128):
        return retrain.model_full_size({"input_size": input_size,
                                        "view": {"tile": tile, "largest": 2 * tile}})

    assert full(200) == 200 and full(317) == 200 and full(128) == 128
    assert full(141) == 136   # a multiple of 8, as every training size
    assert full(400, input_size=256) == 256
    assert retrain.model_full_size({"input_size": 128}) == 128   # a card without the record
    assert retrain.model_full_size({"input_size": 128, "view": "?"}) == 128   # nor a valid one
    assert retrain.model_full_size(None) == 200
    c = retrain.suggest_settings({"a": 300, "b": 300}, {200: 0.001, 128: 0.0005},
                                 current_bundle="B", class_names=("a", "b"),
                                 current_card={"input_size": 128,
                                               "view": {"tile": 200, "largest": 200},
                                               "class_names": ["a", "b"]},
                                 image_side=200, budget_seconds=3600)
    assert c.input_size == 200


def test_dry_run_prints_a_command_a_shell_can_run(tmp_path, stand_in_bundle, capsys):
    import shlex

    root = make_dataset(tmp_path / "plant data", classes=("pits", "scale"), per_class=8, size=48)
    assert retrain.main(["--data", str(root), "--current", str(stand_in_bundle), "--rate", "500",
                         "--name", "Line 3's model", "--dry-run"]) == 0
    line = next(t for t in capsys.readouterr().out.splitlines() if t.startswith("same as: "))
    words = shlex.split(line[len("same as: "):])
    assert words[words.index("--data") + 1] == str(root)
    assert words[words.index("--name") + 1] == "Line 3's model"
    # the training command reads it back to the wizard's settings, int8 left out of the export
    from training import cli
    args = cli.build_parser().parse_args(words[3:])
    config = cli._config(args)
    assert not config.export_int8 and config.init_bundle == str(stand_in_bundle)
    assert config.later_epoch_margin_images == 1 and not config.freeze_early
    assert config.name == "Line 3's model" and config.augment_check


def test_the_stated_epochs_count_the_augmentation_check():
    from dataclasses import replace

    from inspector.retrain.cli import _epochs_text
    from training.train import TrainConfig
    from training.transfer import CHECK_EPOCHS

    c = TrainConfig(epochs=10, time_budget_s=600.0, augment=True, augment_check=True)
    text = _epochs_text(c)
    assert text.startswith("10.0 min of training (about 10 epochs after a check of "
                           f"{CHECK_EPOCHS}+{CHECK_EPOCHS} epochs")
    assert f"or {10 + 2 * CHECK_EPOCHS} when the new head already separates" in text
    assert _epochs_text(replace(c, time_budget_s=0.0)) == (
        f"10 epochs after a check of {CHECK_EPOCHS}+{CHECK_EPOCHS} epochs with and without the "
        f"camera augmentation ({CHECK_EPOCHS} more with its light and pixel shifts alone if it "
        "is dropped)")
    # the third probe only where there are camera shifts to keep and geometry to drop
    assert _epochs_text(replace(c, time_budget_s=0.0, geometry=False)) == (
        f"10 epochs after a check of {CHECK_EPOCHS}+{CHECK_EPOCHS} epochs with and without the "
        "camera augmentation")
    assert "check" not in _epochs_text(replace(c, augment_check=False))
    assert _epochs_text(replace(c, augment_check=False, time_budget_s=0.0)) == "10 epochs"


@pytest.mark.parametrize("option, value", [("--rate", "-5"), ("--epochs", "0"), ("--size", "0"),
                                           ("--budget-min", "-1"), ("--min-per-class", "0"),
                                           ("--rate", "nan")])
def test_retrain_numbers_must_be_above_zero(option, value, capsys):
    with pytest.raises(SystemExit) as exc:
        retrain.main(["--data", "x", option, value, "--dry-run"])
    assert exc.value.code == 2 and option in capsys.readouterr().err


def test_a_decimal_comma_in_the_rate_is_refused(capsys):
    """"--rate 22,2" read as 22 and 2 images/s planned two hours at a smaller size (a locale
    audit); two speeds where the smaller size is slower cannot be meant."""
    with pytest.raises(SystemExit) as exc:
        retrain.main(["--data", "x", "--rate", "22,2", "--dry-run"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "write decimals with a point (22.2)" in err


def test_a_model_trained_but_not_compared_is_kept(tmp_path, stand_in_bundle, capsys,
                                                  monkeypatch):
    """``inspector retrain``: Ctrl+C or a failure during the comparison, after the training,
    keeps the trained model (in the library, not in use; or, when the library cannot take it,
    in a folder of its own that is named)."""
    from inspector import paths
    from inspector.library import ModelLibrary
    from inspector.retrain.cli import _keep_unjudged
    from training.train import TrainConfig

    lib = ModelLibrary()
    bundle = tmp_path / "work" / "bundle"
    shutil.copytree(stand_in_bundle, bundle)
    assert _keep_unjudged(lib, bundle, TrainConfig(name="Plant"), KeyboardInterrupt()) == 130
    err = capsys.readouterr().err
    [v] = lib.versions()
    assert v.version == "plant-v1" and lib.active_path() is None and not bundle.exists()
    assert "stopped during the comparison" in err and "saved as plant-v1" in err
    assert "activate plant-v1" in err
    shutil.copytree(stand_in_bundle, bundle)

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lib, "add", full_disk)
    assert _keep_unjudged(lib, bundle, TrainConfig(name="Plant"), OSError("image gone")) == 2
    err = capsys.readouterr().err
    [kept] = (paths.user_data_dir() / "kept-models").iterdir()
    assert (kept / "model.keras").is_file() and not bundle.exists()
    assert "comparison with the current model failed: image gone" in err
    assert "No space left on device" in err and f"kept in {kept}" in err
