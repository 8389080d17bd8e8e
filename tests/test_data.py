"""training.data: scanning class folders, loading arrays, stratified splits and folds."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from synth import CLASSES, make_dataset, texture
from training import data as data_mod


def test_one_class_is_a_clear_error(tmp_path):
    make_dataset(tmp_path, classes=("crazing",), per_class=3, size=16)
    with pytest.raises(data_mod.DatasetError, match="at least two"):
        data_mod.scan_dataset(tmp_path)


def test_empty_class_is_named(tmp_path):
    make_dataset(tmp_path, classes=("crazing", "patches"), per_class=3, size=16)
    (tmp_path / "scratches").mkdir()
    with pytest.raises(data_mod.DatasetError, match="scratches"):
        data_mod.scan_dataset(tmp_path)


def test_unreadable_files_are_listed_by_load_arrays(tmp_path):
    make_dataset(tmp_path, classes=("crazing", "patches"), per_class=3, size=16)
    (tmp_path / "patches" / "bad.bmp").write_bytes(b"\x00" * 10)
    ds = data_mod.scan_dataset(tmp_path)
    with pytest.raises(data_mod.DatasetError, match="bad.bmp"):
        data_mod.load_arrays(ds, 16)


def test_load_readable_names_what_it_cannot_read(tmp_path):
    make_dataset(tmp_path, classes=("crazing", "patches"), per_class=3, size=16)
    (tmp_path / "patches" / "bad.bmp").write_bytes(b"\x00" * 10)
    ds = data_mod.scan_dataset(tmp_path)
    kept, images, errors = data_mod.load_readable(ds, 16)
    assert len(kept) == len(images) == 6 and "bad.bmp" in str(errors[0])
    with pytest.raises(data_mod.DatasetError, match="no image files"):   # not an IndexError
        data_mod.load_readable(ds.subset(np.array([], dtype=np.int64)), 16)


def test_mixed_sizes_are_resized(tmp_path):
    make_dataset(tmp_path, classes=("crazing", "patches"), per_class=2, size=16)
    Image.fromarray(texture(1, 90)).save(tmp_path / "patches" / "big.jpg")
    ds = data_mod.scan_dataset(tmp_path)
    arrays = data_mod.load_arrays(ds, 24)
    assert arrays.shape == (5, 24, 24, 3)
    # each image's own size, for the card's record of the scale the model was trained at
    assert sorted(map(tuple, data_mod.image_sizes(ds).tolist())) == [(16, 16)] * 4 + [(90, 90)]


def test_a_non_square_image_is_made_square_by_reflection_for_a_square_model(tmp_path):
    from training.images import reflect_to_square, resize_rgb

    make_dataset(tmp_path, classes=("crazing", "patches"), per_class=2, size=16)
    wide = texture(1, 90)[:30]                                  # 90 wide, 30 high
    Image.fromarray(wide).save(tmp_path / "patches" / "wide.png")
    ds = data_mod.scan_dataset(tmp_path)
    i = [p.name for p in ds.files].index("wide.png")
    assert data_mod.image_sizes(ds)[i].tolist() == [30, 90]     # from the header
    square = data_mod.load_arrays(ds, 24, square=True)
    stretched = data_mod.load_arrays(ds, 24)
    rgb = np.stack([wide] * 3, axis=-1) if wide.ndim == 2 else wide
    assert (square[i] == resize_rgb(reflect_to_square(rgb, 24), 24)).all()
    assert (stretched[i] == resize_rgb(rgb, 24)).all() and (square[i] != stretched[i]).any()


def test_split_is_stratified_seeded_and_keeps_duplicates_together(tmp_path):
    make_dataset(tmp_path, classes=CLASSES[:3], per_class=24, size=8)
    for k in range(3):  # byte-identical copies within a class
        shutil.copy(tmp_path / "crazing" / f"cr_{k}.png", tmp_path / "crazing" / f"copy_{k}.png")
    ds = data_mod.scan_dataset(tmp_path)
    tr, va, te = data_mod.stratified_split(ds, 1 / 12, 1 / 12, seed=7)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(len(ds)))
    for idx in (va, te):
        counts = np.bincount(ds.labels[idx], minlength=3)
        assert counts.min() >= 2 and counts.max() - counts.min() <= 2
    side = {}
    for name, idx in (("train", tr), ("val", va), ("test", te)):
        for i in idx:
            side[i] = name
    for group in data_mod.duplicate_groups(ds):
        assert len({side[i] for i in group}) == 1
    assert np.array_equal(te, data_mod.stratified_split(ds, 1 / 12, 1 / 12, seed=7)[2])
    assert not np.array_equal(te, data_mod.stratified_split(ds, 1 / 12, 1 / 12, seed=8)[2])


def test_folds_are_disjoint_and_stratified(tmp_path):
    make_dataset(tmp_path, classes=CLASSES[:2], per_class=10, size=8)
    ds = data_mod.scan_dataset(tmp_path)
    folds = data_mod.stratified_folds(ds, 5, seed=1)
    joined = np.concatenate(folds)
    assert len(joined) == len(set(joined.tolist())) == len(ds)
    for f in folds:
        assert np.bincount(ds.labels[f], minlength=2).tolist() == [2, 2]


def test_a_bundles_split_is_read_back_as_indices(tmp_path):
    from training.bundle import BundleError, read_split

    root = make_dataset(tmp_path / "d", classes=("crazing", "patches"), per_class=3, size=8)
    ds = data_mod.scan_dataset(root)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    assert read_split(bundle) is None
    with pytest.raises(data_mod.DatasetError, match="no split.json"):
        data_mod.bundle_split(ds, bundle)
    (bundle / "split.json").write_text(json.dumps({
        "train": ["crazing/cr_0.png", "patches/pa_0.png", "patches/pa_1.png"],
        "validation": ["crazing/cr_1.png"], "test": ["crazing/cr_2.png", "patches/pa_2.png"]}))
    tr, va, te = data_mod.bundle_split(ds, bundle)
    assert [ds.relative(i) for i in te] == ["crazing/cr_2.png", "patches/pa_2.png"]
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(len(ds)))
    (root / "crazing" / "cr_2.png").unlink()
    with pytest.raises(data_mod.DatasetError, match="test split are missing"):
        data_mod.bundle_split(data_mod.scan_dataset(root), bundle, ["test"])
    (bundle / "split.json").write_text("{")
    with pytest.raises(BundleError, match="damaged split file"):
        data_mod.bundle_split(ds, bundle)


def test_linked_sub_folders_are_listed_once_and_a_loop_ends(tmp_path):
    from inspector.session import scan_images
    from training.images import files_under

    share = tmp_path / "share"
    (share / "deep").mkdir(parents=True)
    (share / "a.png").write_bytes(b"")
    (share / "deep" / "b.png").write_bytes(b"")
    cls = tmp_path / "data" / "crazing"
    cls.mkdir(parents=True)
    (cls / "c.png").write_bytes(b"")
    (cls / "mounted").symlink_to(share, target_is_directory=True)
    (share / "deep" / "back").symlink_to(tmp_path / "data", target_is_directory=True)  # a loop
    names = sorted(p.name for p in files_under(cls))
    assert names == ["a.png", "b.png", "c.png"]
    listed = scan_images(tmp_path / "data")
    assert sorted(p.name for p in listed) == ["a.png", "b.png", "c.png"]
    assert (cls / "mounted" / "a.png") in listed


def test_a_folder_both_in_the_tree_and_linked_is_listed_under_its_own_path(tmp_path):
    from training.images import files_under

    (tmp_path / "d" / "b_real").mkdir(parents=True)
    (tmp_path / "d" / "b_real" / "x.png").write_bytes(b"")
    for name in ("a_link", "c_link"):
        (tmp_path / "d" / name).symlink_to(tmp_path / "d" / "b_real", target_is_directory=True)
    assert files_under(tmp_path / "d") == [tmp_path / "d" / "b_real" / "x.png"]


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
def test_a_pipe_or_a_broken_link_named_like_an_image_is_an_unreadable_file(tmp_path):
    """A FIFO called x.bmp used to hang every command that opened it (training, the checks,
    classify); a broken link stopped evaluate with a bare errno while computing digests."""
    import os

    from training.images import ImageReadError, decode_image, image_size

    root = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=3, size=16)
    pipe = root / CLASSES[0] / "pipe.bmp"
    os.mkfifo(pipe)
    link = root / CLASSES[1] / "gone.png"
    link.symlink_to(tmp_path / "nowhere.png")
    ds = data_mod.scan_dataset(root)                 # with digests: no hang, no error
    assert {pipe, link} <= set(ds.files) and len(set(ds.digests)) == len(ds.files)
    with pytest.raises(ImageReadError, match="not a regular file"):
        decode_image(pipe)
    with pytest.raises(ImageReadError, match="file not found"):
        decode_image(link)
    assert image_size(pipe) is None


def test_images_of_other_formats_in_a_class_folder_are_said(tmp_path, caplog):
    """train, cv, evaluate and robustness left a .gif or .webp out without a word."""
    root = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=3, size=16)
    (root / CLASSES[0] / "scan.webp").write_bytes(b"RIFF0000WEBPVP8 ")
    (root / CLASSES[1] / "notes.txt").write_text("not an image: not said")
    ds = data_mod.scan_dataset(root)
    assert len(ds) == 6
    said = [r.getMessage() for r in caplog.records if "other formats" in r.getMessage()]
    assert len(said) == 1 and f"{CLASSES[0]}/scan.webp" in said[0] and "notes.txt" not in said[0]
