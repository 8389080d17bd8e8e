"""training.padding: constant fill left at a frame's border by software (a turn with black
corners, letterbox bars) is found and replaced by the mirrored surface; a real surface is left
alone. And every path that feeds the model fills it: the app's engine, the evaluation
predictors and the training data."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from synth import texture
from training import padding as P


def rgb(grey):
    return np.repeat(grey[..., None], 3, axis=2)


def surface(size=64, seed=0, cls=3):
    # clipped away from 0 and 255, so that no surface pixel equals the fill colours used here
    return rgb(np.clip(texture(cls, size, seed=seed), 20, 235))


def turned(a, degrees):
    return np.asarray(Image.fromarray(a).rotate(degrees, resample=Image.BILINEAR))


def bars(a, rows, value, axis=0):
    out = a.copy()
    if axis == 0:
        out[:rows], out[-rows:] = value, value
    else:
        out[:, :rows], out[:, -rows:] = value, value
    return out


def test_a_turned_frame_gets_its_black_corners_filled_with_its_surface():
    a = turned(surface(), 30)
    black = (a == 0).all(axis=-1)
    filled, share = P.fill_padding(a)
    # the exact black and the edge pixels the turn blended to near black
    assert black.mean() <= share <= black.mean() + 0.01 and share > 0.1
    assert not (filled == 0).all(axis=-1).any()          # no fill left
    # the surface kept is where it was, the rest mirrors it
    y0, x0, y1, x1 = P.largest_rectangle(~cv2.dilate(black.astype(np.uint8),
                                                     np.ones((5, 5), np.uint8)).astype(bool))
    assert np.array_equal(filled[y0:y1, x0:x1], a[y0:y1, x0:x1])
    assert (y1 - y0) * (x1 - x0) > 0.35 * a.shape[0] * a.shape[1]
    assert np.array_equal(filled[y0 - 3:y0][::-1], filled[y0 + 1:y0 + 4])   # reflected about it
    assert filled.dtype == a.dtype and filled.shape == a.shape


def test_letterbox_bars_of_any_colour_are_mirrored_over():
    a = surface(seed=1)
    a[a == 114] = 115     # no surface pixel of the grey bars' colour
    for value, axis in ((0, 0), (114, 1), (255, 0)):
        padded = bars(a, 10, value, axis)
        filled, share = P.fill_padding(padded)
        assert share == pytest.approx(20 / 64)
        kept = slice(10 + P.MARGIN, 64 - 10 - P.MARGIN)
        k0, k1 = kept.start, kept.stop
        if axis == 0:
            assert np.array_equal(filled[kept], a[kept])
            assert np.array_equal(filled[:k0][::-1], a[k0 + 1:2 * k0 + 1])   # reflected
        else:
            assert np.array_equal(filled[:, kept], a[:, kept])
            assert np.array_equal(filled[:, k1:], a[:, 2 * k1 - 64 - 1:k1 - 1][:, ::-1])


def test_a_surface_without_padding_is_left_as_it_is():
    a = surface(seed=2)
    filled, share = P.fill_padding(a)
    assert share == 0.0 and filled is a
    assert P.padding_mask(a) is None


def test_one_flat_corner_is_not_padding():
    # JPEG flattens a corner, a highlight clips one: fill in one corner only counts with a
    # straight slanted edge (next test); a square block in a corner has none
    a = surface(seed=3)
    a[:20, :20] = 0
    assert P.padding_mask(a) is None
    b = surface(seed=3)
    b[:12] = 0            # a bar across two corners, one colour: padding
    assert P.padding_mask(b) is not None
    c = b.copy()
    c[:12, 32:] = 7       # the same bar in two colours, each in one corner: not
    assert P.padding_mask(c) is None
    d = surface(size=200, seed=3)   # two opposite corners of one colour (seen from JPEG): not
    d[:40, :40] = d[-40:, -40:] = 61
    assert P.padding_mask(d) is None


def test_one_corner_counts_only_with_a_straight_slanted_edge():
    # a tile at the corner of a de-skewed frame: the turn's wedge in one of its corners
    a = surface(size=200, seed=9)
    yy, xx = np.mgrid[0:200, 0:200]
    wedge = yy < 40 - 0.35 * xx                  # a slanted straight edge from the corner
    b = a.copy()
    b[wedge] = 0
    filled, share = P.fill_padding(b)
    assert share == pytest.approx(wedge.mean()) and not (filled == 0).all(axis=-1).any()
    # the same share as a staircase of 8x8 blocks (JPEG's flat corner): not padding
    stairs = (yy // 8) * 8 < 40 - 0.35 * ((xx // 8) * 8)
    c = a.copy()
    c[stairs] = 0
    assert P.padding_mask(c) is None
    assert not P.straight_oblique_edge(stairs) and P.straight_oblique_edge(wedge)
    # a straight edge along the frame's axis in one corner only is no turn's wedge
    assert not P.straight_oblique_edge(yy < 30)


def test_a_bar_on_one_side_only_is_padding_in_the_batch_too():
    # the fill holds exactly two corners, on the left (the bottom-left block is read) or the
    # bottom: found one frame at a time and by the batch's corner check alike
    for side in ("left", "bottom"):
        a = surface(seed=10)
        if side == "left":
            a[:, :14] = 0
        else:
            a[-14:] = 255
        filled, share = P.fill_padding(a)
        assert share == pytest.approx(14 / 64) and not np.array_equal(filled, a)
        out, shares = P.fill_padding_batch(np.stack([surface(seed=11), a]))
        assert shares[0] == 0 and shares[1] == pytest.approx(14 / 64)
        assert np.array_equal(out[1], filled)


def test_opposite_stepped_corners_are_not_padding():
    # two opposite corners of one colour with stepped edges (JPEG's 8x8 blocks): neither a pad
    # on one side nor a turn's straight wedge
    a = surface(size=200, seed=12)
    yy, xx = np.mgrid[0:200, 0:200]
    steps = (yy // 8) * 8 + (xx // 8) * 8 < 40
    a[steps] = 0
    a[steps[::-1, ::-1]] = 0
    assert P.padding_mask(a) is None


def test_an_object_on_a_plain_background_is_not_made_a_surface():
    # more than MAX_FILL of the frame is fill: it is left as it is, its share reported
    a = np.full((200, 200, 3), 255, np.uint8)
    a[70:130, 70:130] = surface(size=60, seed=13)
    filled, share = P.fill_padding(a)
    assert filled is a
    assert share == pytest.approx(1 - 0.09, abs=0.005) and share > P.MAX_FILL


def test_the_fill_colour_is_exact():
    # rows 6-11 a few levels off the bars' colour are surface, whatever the colour: a tolerance
    # ran into dark surface beside black bars
    for value, off in ((114, 118), (0, 4), (255, 251)):
        near = bars(surface(seed=15), 12, value)
        near[6:12] = off
        m = P.padding_mask(near)
        assert m is not None and m[:6].all() and not m[6:12].any()


def test_a_dim_frame_is_not_padding():
    dim = (surface(seed=16).astype(np.float32) * 0.2).astype(np.uint8)   # levels 4-47
    dim[:3, :3] = dim[:3, -3:] = 5
    assert P.fill_padding(dim)[1] < 0.01


def test_one_corner_fill_reaching_the_far_edge_is_surface():
    a = surface(size=200, seed=17)
    yy, xx = np.mgrid[0:200, 0:200]
    band = xx > 110 + 0.03 * yy            # straight, near-vertical, from the top to the bottom
    a[band] = 5
    a[-3:, -3:] = 6                        # the bottom-right corner is not the same colour
    assert P.straight_oblique_edge(band)
    assert P.padding_mask(a) is None       # one corner's fill, but it reaches the far edge
    a[-3:, -3:] = 5
    assert P.padding_mask(a) is not None   # a bar on the right side: padding


def test_a_ragged_flat_region_is_not_padding():
    # a clipped highlight along the top edge, its lower edge ragged: the surface left under it
    # is not convex, so it is a region of the surface, not fill left by software
    a = surface(seed=4)
    for x in range(64):
        a[:12 + (8 if (x // 8) % 2 else 0), x] = 255
    assert (a[:3, :3] == 255).all() and (a[:3, -3:] == 255).all()
    assert P.padding_mask(a) is None
    b = surface(seed=4)
    b[:16] = 255          # the same share with a straight edge: a pad
    assert P.padding_mask(b) is not None


def test_a_small_fill_counts_only_when_all_four_corners_hold_it():
    a = surface(size=200, seed=5)
    two = a.copy()
    two[:2, :] = 0        # one straight bar across two corners: 1% of the frame
    two[:3, :3] = two[:3, -3:] = 0
    assert (two == 0).all(axis=-1).mean() < P.MIN_SHARE
    assert P.padding_mask(two) is None
    small_turn = turned(a, 2)            # 1.7% of the frame, in all four corners
    assert P.MIN_SHARE_ALL < (small_turn == 0).all(axis=-1).mean() < P.MIN_SHARE
    assert P.fill_padding(small_turn)[1] > 0
    corner = ((small_turn == 0).all(axis=-1) & (np.arange(200)[:, None] > 100)
              & (np.arange(200)[None, :] > 100))
    other = small_turn.copy()            # one corner's fill another colour: the higher bar
    other[corner] = 60
    assert len({v for _, v in P._corner_colours(other)}) == 2
    assert P.padding_mask(other) is None
    # within NEAR levels of the others: still the four wedges of one turn (as JPEG leaves them)
    near = small_turn.copy()
    near[corner] = 9
    assert P.padding_mask(near) is not None


def jpeg(a, quality):
    import io

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf))


@pytest.mark.parametrize("degrees,quality", [(10, 90), (30, 75), (45, 30), (20, 95)])
def test_a_turned_frame_saved_as_jpeg_is_filled(degrees, quality):
    a = surface(size=200, seed=8)
    frame = jpeg(turned(a, degrees), quality)
    assert P._corner_colours(frame) == [] or P._exact_fill(frame, P._corner_colours(frame)) is None
    filled, share = P.fill_padding(frame)
    assert share > 0.05 and filled is not frame
    # the black wedges and their JPEG ringing are gone: no pixel far darker than the surface
    assert np.percentile(filled.mean(axis=-1), 0.5) > 12
    out, shares = P.fill_padding_batch(frame[None])   # the batch's quick look lets it through
    assert shares[0] == share and np.array_equal(out[0], filled)


def test_dark_corners_that_are_not_one_turn_are_surface():
    a = surface(size=200, seed=9)
    yy, xx = np.mgrid[:200, :200]
    # a vignette: the corners dark and nearly one colour, but curved, not the wedges of a turn
    vignette = np.clip(1.6 - np.hypot(yy - 99.5, xx - 99.5) / 90, 0, 1)[..., None]
    dark = jpeg((a * vignette).astype(np.uint8), 75)
    assert P._near_flat_corners(dark) and P.padding_mask(dark) is None
    # four wedges, but of two different turns (the top from 10 degrees, the bottom from 30)
    mixed = turned(a, 10).copy()
    mixed[100:] = turned(a, 30)[100:]
    assert P.padding_mask(jpeg(mixed, 90)) is None


def test_too_little_surface_is_left_alone_with_its_share_of_padding():
    a = surface(seed=6)
    a[:, :26] = a[:, -26:] = 0           # a strip of 12 of 64 columns: under MIN_SIDE
    filled, share = P.fill_padding(a)
    assert filled is a and share == pytest.approx(52 / 64)
    out, shares = P.fill_padding_batch(np.stack([a, surface(seed=7)]))
    assert np.array_equal(out[0], a) and shares[0] == pytest.approx(52 / 64) and shares[1] == 0


def test_grey_and_four_channel_frames():
    g = turned(surface(seed=7)[..., 0], 20)
    filled, share = P.fill_padding(g)
    assert share > 0 and filled.ndim == 2 and not (filled == 0).any()
    rgba = np.concatenate([turned(surface(seed=7), 20), np.full((64, 64, 1), 255, np.uint8)], 2)
    rgba[(rgba[..., :3] == 0).all(-1), 3] = 0
    f4, s4 = P.fill_padding(rgba)
    assert s4 == pytest.approx(share, abs=0.002) and (f4[..., 3] == 255).all()


def test_largest_rectangle_is_the_largest():
    # convex regions (the fast path) and any regions (rows of several runs: the stack method)
    rng = np.random.default_rng(0)
    for k in range(40):
        pts = rng.integers(0, 24, (5, 2)).astype(np.int32)
        ok = np.zeros((24, 24), np.uint8)
        cv2.fillConvexPoly(ok, cv2.convexHull(pts), 1)
        ok = ok.astype(bool)
        if k % 2:
            ok &= rng.random((24, 24)) > 0.08
        rect = P.largest_rectangle(ok)
        best = max(((y1 - y0) * (x1 - x0)
                    for y0 in range(24) for y1 in range(y0 + 1, 25)
                    for x0 in range(24) for x1 in range(x0 + 1, 25)
                    if ok[y0:y1, x0:x1].all()), default=0)
        if best == 0:
            assert rect is None
            continue
        y0, x0, y1, x1 = rect
        assert ok[y0:y1, x0:x1].all() and (y1 - y0) * (x1 - x0) == best


def test_a_frame_of_one_colour_is_all_padding_and_left_as_it_is():
    for value in (0, 128):
        a = np.full((64, 64, 3), value, np.uint8)
        filled, share = P.fill_padding(a)
        assert share == 1.0 and filled is a


def test_the_batch_is_looked_at_at_once_and_copied_only_when_filled():
    x = np.stack([surface(seed=s) for s in range(4)])
    same, shares = P.fill_padding_batch(x)
    assert same is x and not shares.any()
    x[2] = turned(x[2], 25)
    out, shares = P.fill_padding_batch(x)
    assert out is not x and shares[2] > 0 and not shares[[0, 1, 3]].any()
    assert np.array_equal(out[[0, 1, 3]], x[[0, 1, 3]])
    assert np.array_equal(out[2], P.fill_padding(x[2])[0])
    assert P.fill_padding_batch(x[:0])[0].shape == (0, 64, 64, 3)


def test_the_engine_reads_a_padded_frame_as_its_filled_surface(classifier):
    a = classifier.prepare(texture(2, 64, seed=3))
    padded = turned(a, 30)
    filled = P.fill_padding(padded)[0]
    v = classifier.judge(np.stack([a, padded]))
    ref = classifier.judge(np.stack([a, filled]))
    assert np.allclose(v.probs, ref.probs, atol=1e-5)
    assert v.padding[0] == 0 and v.padding[1] > 0.1
    assert classifier.judge(a[None]).padding is None
    ins = classifier.inspect(padded)
    assert ins.padding == pytest.approx(v.padding[1])
    assert np.allclose(ins.probs, ref.probs[1], atol=2e-3)
    assert classifier.inspect(a).padding == 0.0


def test_every_path_to_the_model_fills_the_padding(classifier, stand_in_bundle, detector_bundle,
                                                  monkeypatch):
    # the stand-in model's outputs hardly differ between a padded and a filled frame, so each
    # path is watched directly: the engine's judge and inspect, the three predictors, and the
    # Keras predictor with its bundle's detector
    import inspector.engine as engine
    import training.detect as detect
    import training.padding as padding
    import training.predict as predict
    from training.predict import open_predictor

    seen = []
    real = P.fill_padding_batch

    def spy(images):
        seen.append(len(images))
        return real(images)

    for module in (engine, predict, padding):
        monkeypatch.setattr(module, "fill_padding_batch", spy)
    x = np.stack([turned(classifier.prepare(texture(2, 64, seed=3)), 30)] * 3)
    checks = [lambda: classifier.judge(x), lambda: classifier.inspect(x[0]),
              lambda: open_predictor(stand_in_bundle).predict(x),
              lambda: open_predictor(stand_in_bundle / "inspect_fp32.tflite").predict(x),
              lambda: detect.judged(open_predictor(detector_bundle), detector_bundle).judge(x)]
    for check in checks:
        seen.clear()
        check()
        assert sum(seen) >= 1, check


def test_evaluation_predictors_and_training_data_fill_it_too(stand_in_bundle, tmp_path):
    from training import data as data_mod
    from training.predict import open_predictor

    a = surface(seed=8)
    padded = bars(a, 12, 0)
    filled = P.fill_padding(padded)[0]
    pred = open_predictor(stand_in_bundle)
    assert np.allclose(pred.predict(padded[None]), pred.predict(filled[None]), atol=1e-5)
    for name, img in (("a", a), ("b", padded)):
        (tmp_path / "d" / name).mkdir(parents=True)
        Image.fromarray(img).save(tmp_path / "d" / name / "x.png")
    ds = data_mod.scan_dataset(tmp_path / "d", None, with_digests=False)
    x = data_mod.load_arrays(ds, 64)
    assert np.array_equal(x[0], a) and np.array_equal(x[1], filled)


def test_classify_notes_the_padding_of_images_and_tiles(classifier, tmp_path):
    import csv

    from inspector import batch
    from inspector.report import padding_note

    a = classifier.prepare(texture(2, 64, seed=3))
    Image.fromarray(a).save(tmp_path / "plain.png")
    Image.fromarray(turned(a, 30)).save(tmp_path / "turned.png")
    wide = np.zeros((64, 192, 3), np.uint8)      # a frame between bars, tiled at 64 px
    wide[:, 48:144] = np.concatenate([a, a[:, :32]], axis=1)
    Image.fromarray(wide).save(tmp_path / "bars.png")
    out = tmp_path / "r.csv"
    assert batch.main([str(tmp_path), "--out", str(out), "--tiles", "-q",
                       "--json", str(tmp_path / "r.json")], classifier=classifier) == 0
    rows = list(csv.DictReader(open(out, newline="")))
    image = {r["path"].split("/")[-1].split("\\")[-1]: r for r in rows if not r["tile_x"]}
    assert image["plain.png"]["note"] == ""
    share = P.fill_padding(turned(a, 30))[1]
    assert image["turned.png"]["note"] == padding_note(share)
    assert image["turned.png"]["note"].startswith(f"padding: {share:.0%} of the frame")
    tiles = [r for r in rows if r["tile_x"] and "bars" in r["path"]]
    assert any(r["note"].startswith("mostly padding: ") for r in tiles)
    assert not image["bars.png"]["note"].startswith("mostly")   # a tile of surface decides
    # the JSON of the same run says the same
    import json

    doc = json.loads((tmp_path / "r.json").read_text())
    rows_json = doc.get("images") or doc.get("results") or doc.get("rows")
    by_name = {Path(r["path"]).name: r for r in rows_json}
    assert by_name["turned.png"]["note"] == padding_note(share)
    assert not by_name["plain.png"]["note"]


def test_too_few_edge_points_are_no_straight_edge():
    """A small frame with a flat corner of too few edge pixels to fit a line is surface (a
    regression: the fit's 'too few points' once read as a straight edge)."""
    a = surface(size=32, seed=10)
    yy, xx = np.mgrid[:32, :32]
    a[(yy + xx) < 9] = 255                      # a flat triangle, legs of 9 px, one corner
    part = (a == 255).all(axis=-1)
    assert P.edge_line(part, 1.0) is None and not P.straight_oblique_edge(part)
    assert P.fill_padding(a)[1] == 0.0


def test_a_turned_frame_whose_fill_is_not_one_exact_colour_is_found_in_a_batch():
    """The batch's quick look lets a frame through whose four corners are only nearly flat
    (noise in the fill, as a camera-made turn or a lossy re-save leaves) - and it is filled as
    fill_padding fills it (the app and training alike)."""
    rng = np.random.default_rng(4)
    a = surface(size=200, seed=11)
    frame = turned(a, 25).copy()
    fill = (frame == 0).all(axis=-1)
    frame[fill] = rng.integers(0, 7, (int(fill.sum()), 1))
    assert P._corner_colours(frame) == []                 # no corner one exact colour
    filled, share = P.fill_padding(frame)
    out, shares = P.fill_padding_batch(frame[None])
    assert share > 0.1 and shares[0] == share and np.array_equal(out[0], filled)
    # 16-bit levels are not 8-bit ones: such a frame is not looked at (the model's input is
    # 8-bit; inspector and training fill that)
    assert P.fill_padding(frame.astype(np.uint16) * 257)[1] == 0.0


def test_four_wedges_of_two_near_turns_are_not_one_turn():
    a = surface(size=200, seed=12)
    mixed = turned(a, 20).copy()
    mixed[100:] = turned(a, 27)[100:]                     # 7 degrees apart
    frame = jpeg(mixed, 90)
    assert P._near_flat_corners(frame) and P._border_runs_of_a_turn(
        frame, [np.zeros(3, np.int16)] * 4)               # the quick look lets it through
    assert P.padding_mask(frame) is None
