"""Tiles: the grid's geometry, the image's verdict from its tiles, and ``inspector classify`` on
a large image with one small defect patch."""
import csv
import json

import numpy as np
import pytest

from fake_tiles import PATCH, BrightnessClassifier, large_image, write_large
from fake_tiles import large_image as large_image_of
from inspector import batch, tiles
from inspector.tiles import Roi, TileSettings


@pytest.mark.parametrize("w,h,tile,overlap", [(1600, 1200, 200, 0.25), (1000, 300, 200, 0.0),
                                              (201, 999, 200, 0.5), (4096, 3000, 200, 0.25),
                                              (333, 200, 200, 0.9), (200, 200, 200, 0.25)])
def test_grid_covers_the_image_with_the_overlap_asked_for(w, h, tile, overlap):
    boxes, rows, cols = tiles.tile_grid(Roi(0, 0, w, h), tile, overlap)
    assert len(boxes) == rows * cols == tiles.tile_count(w, h, tile, overlap)
    covered = np.zeros((h, w), bool)
    for b in boxes:
        assert b.w == min(tile, w) and b.h == min(tile, h)       # full tiles, no resampling
        assert 0 <= b.x and b.x + b.w <= w and 0 <= b.y and b.y + b.h <= h   # inside
        covered[b.y:b.y + b.h, b.x:b.x + b.w] = True
    assert covered.all()
    xs = sorted({b.x for b in boxes})
    assert xs[0] == 0 and xs[-1] + min(tile, w) == w                # first and last at the edges
    if len(xs) > 1:
        steps = np.diff(xs)
        assert steps.max() - steps.min() <= 1                        # spread evenly
        assert steps.max() <= tile * (1 - overlap) + 1               # at least the overlap
        # and not more tiles than needed: one fewer would leave less overlap than asked
        assert (w - tile) / (len(xs) - 2 or 1) > tile * (1 - overlap) - 1 or len(xs) == 2


def test_overlap_zero_is_the_cameras_tiling():
    assert tiles.tile_starts(160, 64) == [0, 48, 96]
    assert tiles.tile_starts(400, 200, 0.25) == [0, 100, 200]   # stride 150 -> 3 tiles
    assert tiles.tile_starts(50, 64, 0.25) == [0]


def test_small_images_are_classified_whole():
    assert tiles.plan_tiles(300, 300, 200) is None               # 1.5 tiles: whole
    assert tiles.plan_tiles(200, 301, 200) is not None
    assert tiles.plan_tiles(5000, 5000, 0) is None                # tiling off
    many = tiles.plan_tiles(20000, 20000, 50, 0.5)
    assert many is not None and len(many[0]) <= tiles.MAX_IMAGE_TILES
    # too many tiles: less overlap first, so that the tiles keep the model's scale
    dense = tiles.plan_tiles(4000, 4000, 200, 0.9)
    assert dense[0][0].w == 200 and len(dense[0]) <= tiles.MAX_IMAGE_TILES and dense[3] < 0.9
    assert tiles.plan_tiles(4000, 4000, 200, 0.25)[3] == 0.25


def test_a_strip_thinner_than_a_tile_keeps_its_scale():
    """A 100-pixel strip's tiles are 200 x 100: made square by reflection, not stretched."""
    from training.images import square_surface   # how inspector.tiles.model_input reads a tile

    strip = np.tile(np.arange(100, dtype=np.uint8)[:, None, None] * 2, (1, 3000, 3))
    square, share = square_surface(strip[:, :200])
    assert square.shape == (200, 200, 3) and share == 0.0
    np.testing.assert_array_equal(square[50:150], strip[:, :200])   # the strip itself, centred
    np.testing.assert_array_equal(square[49], strip[0, :200])       # mirrored at its edge
    assert square_surface(strip[:1, :200])[0].shape == (200, 200, 3)
    seen = []

    class Spy(BrightnessClassifier):
        def prepare(self, image):
            seen.append(image.shape)
            return super().prepare(image)

    v = tiles.classify_image(Spy(), strip, TileSettings(size=200))
    assert v.tiles is not None and all(s[0] == s[1] == 200 for s in seen)


def test_defect_free_class_names():
    names = ["good", "OK", "defect_free", "normal", "no_defect", "scratch", "goodness", "crazing"]
    assert tiles.defect_free_classes(names) == [0, 1, 2, 3, 4]


def test_deciding_tile_rule():
    names = ["good", "scratch", "dent"]
    probs = np.array([[0.99, 0.005, 0.005], [0.3, 0.6, 0.1], [0.2, 0.1, 0.7], [0.98, 0.01, 0.01]])
    known = np.ones(4, bool)
    # the most confident defect tile, though good tiles are more confident
    assert tiles.deciding_tile(probs, known, None, names) == 2
    # all good: the most confident good tile
    assert tiles.deciding_tile(probs[[0, 3]], known[:2], None, names) == 0
    # any unknown tile: the least known one wins
    known = np.array([True, False, True, False])
    assert tiles.deciding_tile(probs, known, np.array([0.1, 0.5, 0.2, 0.9]), names) == 3
    # without a defect-free class, the most confident tile
    assert tiles.deciding_tile(probs, np.ones(4, bool), None, ["a", "b", "c"]) == 0
    # a blank tile (score +inf, even probabilities) decides only when all tiles are blank
    even = np.full(3, 1 / 3)
    blank = np.array([np.inf, 0.5, 0.2, np.inf])
    p2 = np.array([even, [0.3, 0.6, 0.1], [0.2, 0.1, 0.7], even])
    assert tiles.deciding_tile(p2, np.array([False, True, True, False]), blank, names) == 2
    assert tiles.deciding_tile(p2, np.array([False, False, True, False]), blank, names) == 1
    assert tiles.deciding_tile(p2[[0, 3]], np.zeros(2, bool), blank[[0, 3]], names) == 0


def test_a_tiled_image_is_judged_again_through_every_tile():
    """The image's unknown score is its least known tile's, so that another threshold flags the
    image exactly when it flags one of its tiles; re-judging moves the deciding tile too."""
    from inspector.tiles import Roi, TiledVerdict

    names = ["good", "scratch", "dent"]
    probs = np.array([[0.99, 0.005, 0.005], [0.3, 0.6, 0.1], [0.2, 0.1, 0.7]])
    scores = np.array([0.1, 0.8, 0.3])
    t = TiledVerdict([Roi(0, 0, 10, 10)] * 3, (1, 3), (10, 30), 0.0, names, probs, scores,
                     np.ones(3, bool), winner=2)
    assert t.image_score == 0.8                  # not the deciding tile's 0.3
    assert t.rejudge(0.5) and t.winner == 1 and list(t.known) == [True, False, True]
    assert t.label(1) == "unknown"
    assert not t.rejudge(0.5)
    assert t.rejudge(None) and t.winner == 2 and t.known.all()
    # a result judged while the setting changed is judged again the same way, tiles and all
    from inspector.batch import Result

    r = Result(0, "big.png", probs[2], None, t.image_score, True, t)
    r.rejudge(0.5)
    assert not r.known and t.winner == 1 and list(r.probs) == list(probs[1])
    plain = Result(1, "small.png", probs[0], None, 0.8, True)
    plain.rejudge(0.5)
    assert not plain.known
    # a blank tile's +inf is not the image's score while another tile has surface
    b = TiledVerdict([Roi(0, 0, 10, 10)] * 3, (1, 3), (10, 30), 0.0, names, probs,
                     np.array([np.inf, 0.8, 0.3]), np.array([False, True, True]), winner=2)
    assert b.image_score == 0.8
    assert b.rejudge(0.5) and b.winner == 1
    assert b.rejudge(0.9) and b.winner == 2 and not b.known[0]


def test_large_image_is_flagged_through_its_tile():
    clf = BrightnessClassifier()
    img = large_image()
    v = tiles.classify_image(clf, img, TileSettings(size=200), chunk=16)
    t = v.tiles
    assert t is not None and t.tile == 200 and t.grid == (8, 11)
    assert max(clf.calls) <= 16 and sum(clf.calls) == len(t.tiles)
    labels = [t.label(i) for i in range(len(t.tiles))]
    x, y, w, h = PATCH
    patch_tiles = {i for i, b in enumerate(t.tiles) if b.x <= x and x + w <= b.x + b.w
                   and b.y <= y and y + h <= b.y + b.h}
    assert patch_tiles and all(labels[i] == "dark_spot" for i in patch_tiles)
    apart = [i for i, b in enumerate(t.tiles) if b.x + b.w <= x or b.x >= x + w
             or b.y + b.h <= y or b.y >= y + h]
    assert len(apart) > 70 and all(labels[i] == "good" for i in apart)
    assert t.winner in patch_tiles and labels[t.winner] == "dark_spot"
    assert np.argmax(v.probs) == 1 and v.known
    # whole, the patch is lost in the squeezed image
    whole = tiles.classify_image(clf, img, TileSettings(size=0))
    assert whole.tiles is None and np.argmax(whole.probs) == 0


def test_unknown_tile_makes_the_image_unknown():
    img = large_image(width=800, height=600, patch=(100, 100, 150, 150), patch_value=255)
    img[100:250, 100:250] = 255
    v = tiles.classify_image(BrightnessClassifier(), img, TileSettings(size=100, overlap=0.0))
    assert not v.known and v.tiles.label(v.tiles.winner) == "unknown"
    assert v.unknown_score == max(v.tiles.unknown_scores)


def test_cli_writes_image_and_tile_rows(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "imgs"
    folder.mkdir()
    big = write_large(folder / "big.png")
    small = folder / "small.png"
    from PIL import Image
    Image.fromarray(large_image(40, 40, patch=(0, 0, 1, 1))).save(small)
    out = tmp_path / "r.csv"
    clf = BrightnessClassifier()
    code = batch.main([str(folder), "--out", str(out), "--tiles", "--tile-size", "200", "-q"],
                      classifier=clf)
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    header = out.read_text().splitlines()[0].split(",")
    assert header[:5] == ["path", "tile_x", "tile_y", "tile_w", "tile_h"]
    image_rows = [r for r in rows if r["tile_x"] == ""]
    assert [r["path"] for r in image_rows] == [str(big), str(small)]
    assert image_rows[0]["label"] == "dark_spot" and image_rows[1]["label"] == "good"
    tile_rows = [r for r in rows if r["tile_x"] != ""]
    assert len(tile_rows) == 88 and all(r["path"] == str(big) for r in tile_rows)
    assert rows[0]["path"] == str(big) and rows[0]["tile_x"] == ""   # the image row first
    x, y, w, h = PATCH
    flagged = [r for r in tile_rows if r["label"] == "dark_spot"]
    assert flagged and all(int(r["tile_x"]) <= x + w and int(r["tile_x"]) + 200 >= x
                           and int(r["tile_y"]) <= y + h and int(r["tile_y"]) + 200 >= y
                           for r in flagged)
    assert {r["label"] for r in tile_rows} == {"good", "dark_spot"}
    # the JSON holds the same tile rows under their image, with rectangle and probabilities
    doc_path = tmp_path / "r.json"
    assert batch.main([str(folder), "--json", str(doc_path), "--tiles", "--tile-size", "200",
                       "-q"], classifier=clf) == 0
    results = {r["path"]: r for r in json.loads(doc_path.read_text())["results"]}
    assert "tiles" not in results[str(small)]
    json_tiles = results[str(big)]["tiles"]
    assert len(json_tiles) == 88
    assert [(t["tile_x"], t["tile_y"], t["label"]) for t in json_tiles] == [
        (int(r["tile_x"]), int(r["tile_y"]), r["label"]) for r in tile_rows]
    assert set(json_tiles[0]["probabilities"]) == set(clf.class_names)
    # a folder given relative to the working folder: the same tiles under the image's result
    monkeypatch.chdir(tmp_path)
    assert batch.main([folder.name, "--json", "rel.json", "--tiles", "--tile-size", "200", "-q"],
                      classifier=clf) == 0
    rel = {r["path"]: r for r in json.loads((tmp_path / "rel.json").read_text())["results"]}
    assert len(rel[str(big)]["tiles"]) == 88


def test_cli_default_tiles_at_the_models_input_size_and_zero_squeezes(tmp_path, capsys):
    big = write_large(tmp_path / "big.png", width=320, height=240, patch=(200, 150, 40, 40))
    out = tmp_path / "r.csv"
    assert batch.main([str(big), "--out", str(out), "-q"], classifier=BrightnessClassifier()) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1 and "tile_x" not in rows[0] and rows[0]["label"] == "dark_spot"
    assert batch.main([str(big), "--out", str(out), "-q", "--tile-size", "0"],
                      classifier=BrightnessClassifier()) == 0
    assert list(csv.DictReader(out.open()))[0]["label"] == "good"
    with pytest.raises(SystemExit):
        batch.main([str(big), "--overlap", "0.95"], classifier=BrightnessClassifier())
    capsys.readouterr()


def test_large_frames_are_classified_a_few_at_a_time(tmp_path, monkeypatch):
    """With tiling, a batch holds as many images as the tiles in flight allow (learnt from the
    images so far; the first batches small), so that large frames do not fill the memory;
    small images still go a whole batch at a time."""
    monkeypatch.setattr(batch, "MAX_TILES_IN_FLIGHT", 300)
    big = [write_large(tmp_path / f"big{k}.png") for k in range(5)]   # 1600 x 1200: 99 tiles
    small = []
    for k in range(40):
        small.append(tmp_path / f"s{k}.png")
        from PIL import Image
        Image.fromarray(large_image(64, 64, patch=(0, 0, 1, 1))).save(small[-1])

    def run(paths):
        asked, source = [], iter(enumerate(paths))

        def take(n):
            asked.append(n)
            return [x for _, x in zip(range(n), source)]

        results = []
        batch.classify_stream(BrightnessClassifier(), take, results.extend,
                              tiling=TileSettings(size=200))
        assert len(results) == len(paths) and all(r.error is None for r in results)
        return asked

    assert set(run(big)) == {1}                # 300 tiles in flight: one 99-tile frame a batch
    asked = run(small)
    assert asked[0] == 1 and max(asked) == batch.DEFAULT_BATCH


def test_cli_tiles_a_folder_as_the_window_was_set_to(tmp_path, capsys):
    """Without --tile-size and --overlap, ``inspector classify`` on one folder uses the tile
    settings the window remembers for it (here: whole images), and says so."""
    from inspector.settings import settings_path
    from inspector.tiles import TILES_GROUP, folder_key

    folder = tmp_path / "imgs"
    folder.mkdir()
    write_large(folder / "big.png")
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(f'[{TILES_GROUP}]\n{folder_key(folder)}="0,0.25"\n')
    out = tmp_path / "r.csv"
    assert batch.main([str(folder), "--out", str(out), "--tiles"],
                      classifier=BrightnessClassifier()) == 0
    assert "whole images (the window's setting for this folder)" in capsys.readouterr().err
    assert len(list(csv.DictReader(out.open()))) == 1          # no tile rows: classified whole
    assert batch.main([str(folder), "--out", str(out), "--tiles", "--tile-size", "200"],
                      classifier=BrightnessClassifier()) == 0
    assert len(list(csv.DictReader(out.open()))) > 1


def test_tiles_that_are_mostly_padding_decide_only_when_all_are():
    """A frame letterboxed into a larger one is judged on its surface: the tiles at least half
    padding (training.padding's share, from the engine) and the blank ones are left out of
    the image's verdict and score while any tile has surface; the unit rule first, then the
    engine's tiles of a pillarboxed frame."""
    names = ["a", "b", "c"]
    probs = np.array([[0.1, 0.1, 0.8], [0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])
    known = np.array([False, True, True])
    pad = np.array([0.75, 0.0, 0.2])
    # tile 0 is flagged, but mostly padding: the most confident of the others decides
    assert tiles.deciding_tile(probs, known, np.array([9.0, 0.1, 0.3]), names, pad) == 1
    assert tiles.deciding_tile(probs, known, np.array([9.0, 0.1, 0.3]), names) == 0
    # all mostly padding: they decide as before
    assert tiles.deciding_tile(probs, known, None, names, np.full(3, 0.6)) == 0


def test_a_pillarboxed_frame_is_judged_on_its_surface(unknown_classifier):
    classifier = unknown_classifier
    from synth import texture

    surface = np.repeat(np.clip(texture(1, 128, seed=5), 20, 235)[..., None], 3, axis=2)
    frame = np.zeros((128, 296, 3), np.uint8)    # bars of 84 px: tiles mostly padding (and
    frame[:, 84:212] = surface                   # blank ones, for a model that finds them)
    v = tiles.classify_image(classifier, frame, TileSettings())
    t = v.tiles
    assert t is not None and t.padding is not None
    blank = np.isposinf(t.unknown_scores)
    mostly = t.padding >= tiles.MOSTLY_PADDING
    aside = blank | mostly
    assert mostly.any() and not aside.all()
    assert not aside[t.winner]
    assert v.unknown_score == pytest.approx(float(np.max(t.unknown_scores[~aside])))
    t.rejudge(float(np.max(t.unknown_scores[~aside])))   # every tile of surface accepted
    assert t.known[~aside].all() and not aside[t.winner]
    assert not t.known[blank].any()
    assert (t.padding == 1.0).any()    # the tiles inside the bars: nothing but fill


def test_each_image_of_a_call_keeps_its_own_share_of_padding(classifier):
    from PIL import Image as PILImage

    from synth import texture
    from training.padding import fill_padding

    a = classifier.prepare(texture(2, 64, seed=3))
    turned = np.asarray(PILImage.fromarray(a).rotate(30))
    images = [a, turned, a, turned]
    prepared = [tiles.prepare_image(classifier, x, TileSettings()) for x in images]
    out = tiles.judge_prepared(classifier, prepared, chunk=3)   # the images straddle chunks
    share = fill_padding(turned)[1]
    assert [v.padding for v in out] == pytest.approx([0.0, share, 0.0, share])


# ---- the scale the model was trained at ------------------------------------------------------

def test_the_training_view_is_the_median_side_the_largest_image_and_the_shape():
    from training.card import ModelCard, TrainingView, training_view
    from training.images import Reading

    sizes = np.array([[200, 200], [100, 400], [300, 300], [250, 640], [0, 0]])  # one unreadable
    view = training_view(sizes, 200)     # sqrt(h w): 200 200 300 400; long/short 1 4 1 2.56
    assert (view["tile"], view["largest"], view["images"], view["aspect"]) == (250, 640, 4, 1.78)
    assert view["square"] is False       # they were mostly stretched into the square input
    assert ModelCard({"input_size": 200, "view": view}).view == \
        TrainingView(250, 640, False, smallest=100)
    squares = training_view(np.array([[200, 200], [200, 200], [210, 200]]), 200)
    assert squares["square"] is True and squares["tile"] == 200 and squares["largest"] == 210
    # a record from before "square" was: those trainings stretched every image
    assert ModelCard({"input_size": 200, "view": {"tile": 317, "largest": 632}}).view == \
        TrainingView(317, 632, False)
    # a card from before the record, or a damaged one: read as the app of then read every
    # image, stretched whole into the input and a small one enlarged (an upgrade audit: such a
    # card was read as NEU's square images of one size, and an older wizard model trained on a
    # plant's non-square images then read them otherwise than it learnt them)
    for card in ({"input_size": 64}, {"input_size": 64, "view": None},
                 {"input_size": 64, "view": {"tile": "x"}}, {"input_size": 64,
                                                             "view": {"tile": 0, "largest": 9}}):
        assert ModelCard(card).view == TrainingView(64, 64, False, smallest=0)
        assert ModelCard(card).view.reading == Reading(False, 0)
    assert TrainingView.unrecorded(64) == TrainingView(64, 64, True, smallest=64)  # no card
    assert training_view(np.zeros((0, 2)), 128)["tile"] == 128
    # the training commands and the wizard's finish page say so when it is not the input size
    assert ModelCard({"input_size": 200, "view": view}).notes() == [
        "The app reads images as it was trained: whole up to 640 px (its largest training "
        "image), larger ones in 250 px tiles (its training images' median side), a non-square "
        "image stretched to a square as its training images were."]
    assert ModelCard({"input_size": 200, "view": training_view([[200, 200]], 200)}).notes() == []


class TrainedLarger(BrightnessClassifier):
    """A model whose training images were about 300 px, the largest 500 px."""

    def __init__(self):
        super().__init__()
        from training.card import TrainingView
        self.view = TrainingView(300, 500)


def test_an_image_is_read_at_the_scale_the_model_was_trained_at():
    clf = TrainedLarger()

    def large_image(w, h):
        return large_image_of(w, h, patch=(10, 10, 20, 20))

    # no larger than its training images: whole, as it learnt them (input 32 px, tile 300 px)
    assert tiles.prepare_image(clf, large_image(360, 480), TileSettings()).tiles is None
    # narrow ones too (2.5 to 1): it learnt images of many sizes, and may have learnt such a
    # strip whole (the narrow rule is for a model of one scale, NEU's)
    assert tiles.prepare_image(clf, large_image(500, 200), TileSettings()).tiles is None
    big = tiles.prepare_image(clf, large_image(700, 1000), TileSettings())
    assert big.tiles and {(t.w, t.h) for t in big.tiles} == {(300, 300)}
    # a tile size the user chose is used as it is, whatever the model was trained on
    chosen = tiles.prepare_image(clf, large_image(360, 480), TileSettings(200))
    assert chosen.tiles and {(t.w, t.h) for t in chosen.tiles} == {(200, 200)}
    # a model without the record: its input size (the stand-in's 32 px)
    plain = tiles.prepare_image(BrightnessClassifier(), large_image(360, 480), TileSettings())
    assert plain.tiles and {(t.w, t.h) for t in plain.tiles} == {(32, 32)}
    assert TileSettings().describe(clf.view) == "300 px tiles, overlap 25%; whole up to 500 px"
    assert TileSettings(200).describe(clf.view) == "200 px tiles, overlap 25%"
    assert TileSettings().describe(200) == "200 px tiles, overlap 25%"


def test_whole_up_to_the_largest_training_image_in_the_plan():
    assert tiles.plan_tiles(480, 360, 300, whole_up_to=500) is None
    assert tiles.plan_tiles(480, 360, 300) is not None                 # 1.5 tiles: 450 px
    assert tiles.plan_tiles(501, 360, 300, whole_up_to=500) is not None
    assert tiles.plan_tiles(5000, 5000, 0, whole_up_to=9000) is None   # tiling off


def test_a_narrow_image_longer_than_a_tile_is_read_in_tiles_by_a_square_model():
    """Twice as long as wide and longer than one tile: in tiles at the model's scale, not made
    square by reflection (half of the view a mirror) and shrunk; only for a model that learnt
    square images of one size (one that learnt non-square ones stretched, or square ones of
    many sizes, reads them whole, as it may have learnt them)."""
    from training.card import TrainingView

    assert tiles.plan_tiles(115, 290, 200, narrow=2.0) is not None      # 2.5 to 1: tiles
    got, rows, cols, _ = tiles.plan_tiles(290, 115, 200, narrow=2.0)
    assert (rows, cols) == (2, 1) and all((t.w, t.h) == (115, 200) for t in got)
    assert tiles.plan_tiles(115, 290, 200) is None                      # no narrow rule
    assert tiles.plan_tiles(150, 290, 200, narrow=2.0) is None          # 1.93 to 1: whole
    assert tiles.plan_tiles(90, 190, 200, narrow=2.0) is None           # within one tile
    assert tiles.plan_tiles(115, 290, 0, narrow=2.0) is None            # tiling off
    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, (20, 44, 3), dtype=np.uint8)   # within 1.5 tiles of 32 px
    square_model = BrightnessClassifier()                               # input 32, NEU-like
    p = tiles.prepare_image(square_model, img, TileSettings())
    assert p.tiles is not None and len(p.tiles) == 2
    stretched_model = BrightnessClassifier()
    stretched_model.view = TrainingView(32, 32, square=False)
    assert tiles.prepare_image(stretched_model, img, TileSettings()).tiles is None
    many_sizes = BrightnessClassifier()   # square images of many sizes: none of one scale
    many_sizes.view = TrainingView(32, 64, square=True, smallest=16)
    assert tiles.prepare_image(many_sizes, img, TileSettings()).tiles is None


# ---- non-square whole images, as the model learnt its training images ------------------------

def test_reflect_to_square_and_where_the_image_lies_in_it():
    from training.images import crop_to_box, reflect_to_square, square_box

    img = np.arange(6 * 2, dtype=np.uint8).reshape(6, 2)
    sq = reflect_to_square(img)
    assert sq.shape == (6, 6) and (sq[:, 2:4] == img).all()          # the image in the middle
    assert (sq[:, 1] == img[:, 0]).all() and (sq[:, 4] == img[:, 1]).all()   # mirrored out
    assert reflect_to_square(np.zeros((1, 200, 3), np.uint8)).shape == (200, 200, 3)
    assert square_box(6, 2) == (0.0, 1.0, 2 / 6, 4 / 6) and square_box(5, 5) is None
    m = np.arange(64, dtype=np.float32).reshape(8, 8)
    assert crop_to_box(m, (0.0, 1.0, 0.25, 0.75)).shape == (8, 4)
    assert crop_to_box(m, (0.5, 0.5, 0.0, 1.0)).shape == (1, 8)      # at least one cell
    assert crop_to_box(m, None) is m


def test_a_non_square_image_is_read_as_the_model_learnt_its_training_images():
    from training.card import TrainingView
    from training.images import reflect_to_square, to_model_input

    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)      # 16 wide, 32 high
    square_model = BrightnessClassifier()                          # input 32; NEU-like: square
    got = tiles.prepare_image(square_model, img, TileSettings()).inputs[0]
    assert (got == reflect_to_square(img)).all()                   # not stretched 2x
    stretched_model = BrightnessClassifier()
    stretched_model.view = TrainingView(32, 32, square=False)      # trained on stretched images
    got = tiles.prepare_image(stretched_model, img, TileSettings()).inputs[0]
    assert (got == to_model_input(img, 32)).all()


def test_an_image_smaller_than_training_images_of_one_size_keeps_their_scale():
    """A model that learnt square images of one size (NEU's 200 x 200) reads a smaller image at
    their scale, its surface continued by reflection around it, as a larger image's tiles keep
    it; a model that learnt images of many sizes squeezed each into its input, and so enlarges
    a small one as before. The evaluation commands and the engine's loader read it alike."""
    from training.card import ModelCard, TrainingView, training_view
    from training.images import Reading, fit_input, to_model_input

    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    one = BrightnessClassifier()                                   # input 32, no record: one size
    got = tiles.prepare_image(one, img, TileSettings()).inputs[0]
    assert (got[8:24, 8:24] == img).all() and (got[7] == got[8]).all()   # mirrored out
    assert (got == fit_input(img, 32, Reading(True, 32))).all()    # one pixel path
    wide = rng.integers(0, 255, (8, 16, 3), dtype=np.uint8)
    assert (tiles.prepare_image(one, wide, TileSettings()).inputs[0][12:20, 8:24] == wide).all()
    for view in (TrainingView(32, 64, True, smallest=16),          # images of many sizes
                 TrainingView(32, 32, True),                       # a record without the size
                 TrainingView(32, 32, False, smallest=32)):        # stretched non-square ones
        many = BrightnessClassifier()
        many.view = view
        assert (tiles.prepare_image(many, img, TileSettings()).inputs[0]
                == to_model_input(img, 32)).all()
    # the attention maps lie on the image itself
    one.inspect = lambda x, maps=None: type("Ins", (), {"se_blocks": []})()
    assert tiles.inspect_input(one, img).content == (0.25, 0.75, 0.25, 0.75)
    # what the cards say: NEU-like images are one size, magnetic tiles' are not
    neu = ModelCard({"input_size": 200, "view": training_view([[200, 200]] * 3, 200)}).view
    assert neu.one_scale and neu.reading == Reading(True, 200)
    tiles_view = training_view([[231, 300], [310, 520], [600, 632]], 128)
    assert not ModelCard({"input_size": 128, "view": tiles_view}).view.one_scale
    from training.bundle import read_card
    from inspector import paths
    bundled = ModelCard.of(read_card(paths.bundled_model_dir())).view    # its own record
    assert bundled.one_scale and bundled.reading == Reading(True, 200)
    assert ModelCard({"input_size": 200}).view.reading == Reading(False, 0)   # before the record
    assert not ModelCard({"input_size": 200, "view": {"tile": 200, "largest": 200,
                                                      "square": True}}).view.one_scale
    assert not TrainingView(200, 1000, True, 200).one_scale      # some far larger than the tile
    bad = ModelCard({"input_size": 128, "view": {"tile": 401, "largest": 632, "square": True,
                                                 "smallest": "x"}}).view
    assert bad == TrainingView(401, 632, True, 0)    # the rest of the record kept


def test_the_attention_of_a_reflected_image_lies_on_the_image():
    from inspector.attention import CAM, attention_map

    class Ins:
        se_blocks: list = []

        def cam(self):
            return np.ones((8, 8), np.float32)

    clf = BrightnessClassifier()
    clf.inspect = lambda x, maps=None: Ins()
    wide = tiles.inspect_input(clf, np.zeros((16, 32, 3), np.uint8))
    assert wide.content == (0.25, 0.75, 0.0, 1.0)
    assert attention_map(wide, CAM).shape == (4, 8)                # the image's rows only
    square = tiles.inspect_input(clf, np.zeros((32, 32, 3), np.uint8))
    assert not hasattr(square, "content") and attention_map(square, CAM).shape == (8, 8)


def test_a_thin_tile_is_inspected_as_it_was_classified():
    """The window's tile inspection reads a tile thinner than a tile side as its verdict did
    (continued by reflection, whatever the model learnt) and cuts its maps to the tile."""
    from training.card import TrainingView

    class Ins:
        se_blocks: list = []

        def __init__(self, x):
            self.x = x

        def cam(self):
            return np.ones((8, 8), np.float32)

    clf = TrainedLarger()
    clf.view = TrainingView(32, 32, square=False)       # even a model that learnt stretched
    clf.inspect = lambda x, maps=None: Ins(x)
    strip = large_image_of(900, 20, patch=(5, 5, 5, 5))
    prepared = tiles.prepare_image(clf, strip, TileSettings(32))
    t = prepared.tiles[0]
    ins = tiles.inspect_input(clf, t.crop(strip), whole=False)
    assert np.array_equal(ins.x, prepared.inputs[0])
    assert ins.content == (6 / 32, 26 / 32, 0.0, 1.0)


def test_a_turned_non_square_frame_is_filled_before_it_is_reflected():
    """Reflected first, a turned frame's black wedges would be mirrored inward, where no rule
    finds them; they are filled first, and the share is reported."""
    from training.images import load_image
    from training.padding import fill_padding

    rng = np.random.default_rng(5)
    surface = np.clip(rng.normal(128, 30, (140, 200, 3)), 20, 235).astype(np.uint8)
    from PIL import Image
    frame = np.asarray(Image.fromarray(surface).rotate(20, resample=Image.BILINEAR))
    assert fill_padding(frame)[1] > 0.05                       # its own corners are padding
    clf = BrightnessClassifier()
    clf.input_size = 200
    prepared = tiles.prepare_image(clf, frame, TileSettings())
    assert prepared.tiles is None and prepared.padding[0] > 0.05
    assert (prepared.inputs[0] == 0).all(axis=-1).sum() == 0   # no black left, mirrored or not
    verdict = tiles.judge_prepared(clf, [prepared])[0]
    assert verdict.padding == pytest.approx(prepared.padding[0])
    # training reads the file the same way
    import tempfile
    from pathlib import Path
    path = Path(tempfile.mkdtemp()) / "turned.png"
    Image.fromarray(frame).save(path)
    assert np.array_equal(load_image(path, 200, square=True), prepared.inputs[0])


# ---- tile scores on the scale of one image ----------------------------------------------------

def test_tile_scores_on_one_images_scale_keep_the_stated_share_of_known_images():
    from training.openset import acceptance_threshold, as_one_image

    rng = np.random.default_rng(0)
    val = rng.gamma(4.0, 1.0, 200)          # a detector's validation scores
    t = acceptance_threshold(val, 0.95)
    s = np.linspace(-1.0, 30.0, 500)
    a = as_one_image(s, val, 9)
    assert np.all(np.diff(a) >= 0) and np.all(a <= s + 1e-12)        # monotone, never higher
    np.testing.assert_allclose(as_one_image(s, val, 1), s)             # one tile: as it was
    # images of nine known tiles, scored like the known images a threshold was set on; over
    # 40 validation sets of 138 (each threshold's own coverage varies by a point or two)
    per_tile, on_image = [], []
    for _ in range(40):
        v = rng.gamma(4.0, 1.0, 138)
        t = acceptance_threshold(v, 0.95)
        tiles = rng.gamma(4.0, 1.0, (250, 9))
        per_tile.append((tiles.max(axis=1) <= t).mean())                # about 0.95 ** 9
        on_image.append((as_one_image(tiles, v, 9).max(axis=1) <= t).mean())
    assert np.mean(per_tile) < 0.7
    assert 0.94 <= np.mean(on_image) <= 0.99
    # far in the tail a score is lowered by beta ln(tiles): the maximum of many is that higher
    far = as_one_image(np.array([40.0, 50.0]), val, 9)
    assert abs((40.0 - far[0]) - (50.0 - far[1])) < 0.01 and 40.0 - far[0] > 1.0
    assert np.isposinf(as_one_image(np.array([np.inf]), val, 9)[0])   # a blank tile stays blank
    huge = as_one_image(np.array([1e6]), val, 9)[0]                     # digits kept far out
    assert abs((1e6 - huge) - (40.0 - far[0])) < 0.01
    # a validation score that is not finite is left out, not fitted
    np.testing.assert_allclose(as_one_image(s, np.append(val, [np.inf, np.nan]), 9), a)


def test_a_large_image_of_known_tiles_is_accepted_and_a_foreign_tile_still_flags_it():
    from types import SimpleNamespace

    from training.openset import acceptance_threshold

    val = np.arange(1.0, 101.0)
    clf = SimpleNamespace(class_names=["a", "b"], detector=SimpleNamespace(val_scores=val),
                          unknown_threshold=acceptance_threshold(val, 0.95))
    probs = np.tile([[0.9, 0.1]], (9, 1))
    scores = np.full(9, 50.0)
    scores[4] = 98.0          # over the threshold for one image, common among nine tiles
    known, scaled, winner = tiles.judge_tiles(clf, (600, 600), (200, 200), probs, scores <= 96.5,
                                              scores, None)
    assert known.all() and scaled[4] < clf.unknown_threshold and scaled[4] == scaled.max()
    scores[7] = 150.0         # above every known image: flagged, and it decides
    known, scaled, winner = tiles.judge_tiles(clf, (600, 600), (200, 200), probs, scores <= 96.5,
                                              scores, None)
    assert winner == 7 and not known[7] and known.sum() == 8 and 96.5 < scaled[7] < 150.0
    # a model without validation scores (a stand-in, an older bundle): the tiles' own scores
    plain = SimpleNamespace(class_names=["a", "b"], unknown_threshold=96.5)
    k, s, _ = tiles.judge_tiles(plain, (600, 600), (200, 200), probs, scores <= 96.5, scores, None)
    assert s is scores and k.sum() == 7
    assert tiles.effective_tiles((600, 600), (200, 200), 9, 9) == 9.0
    assert tiles.effective_tiles((600, 600), (200, 200), 3, 9) == 3.0   # six blank tiles
    assert tiles.effective_tiles((50, 600), (50, 200), 3, 3) == 3.0     # a strip: 3 tiles of it
    assert tiles.effective_tiles((300, 300), (200, 200), 4, 4) == 2.25  # overlapping tiles
