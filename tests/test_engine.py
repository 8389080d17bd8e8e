"""inspector.engine through its public API: a Classifier classifies batches, inspects one image
with its attention maps, prepares any frame and loads files (on the stand-in bundle)."""
import numpy as np
import pytest
from PIL import Image

from inspector.engine import Inspection, normalize_map, upsample
from synth import CLASSES, texture
from training.images import ImageReadError

INSPECT_ATOL = 2e-3   # as inspector.selftest allows between inspection and classification


def batch(clf, n):
    return np.stack([clf.prepare(texture(i % 6, 64, seed=i)) for i in range(n)])


def test_classify_gives_one_distribution_per_image(classifier):
    probs = classifier.classify(batch(classifier, 5))
    assert probs.shape == (5, len(CLASSES)) and probs.dtype == np.float32
    assert np.all(np.isfinite(probs)) and probs.min() >= 0
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_classify_takes_one_image_and_an_empty_batch(classifier):
    x = batch(classifier, 1)
    assert classifier.classify(x[0]).shape == (1, len(CLASSES))
    assert classifier.classify(x[:0]).shape == (0, len(CLASSES))


def test_inspect_gives_probabilities_and_maps_that_fit(classifier):
    x = batch(classifier, 3)
    ins = classifier.inspect(x[1])
    assert isinstance(ins, Inspection)
    assert ins.probs.shape == (len(CLASSES),)
    assert ins.probs.sum() == pytest.approx(1.0, abs=1e-5)
    # the inspection model is another graph than the plain one: the self-test's tolerance
    plain = classifier.classify(x)[1]
    assert ins.label == int(np.argmax(plain))
    np.testing.assert_allclose(ins.probs, plain, atol=INSPECT_ATOL)
    assert ins.label == int(np.argmax(ins.probs)) and ins.class_names == list(CLASSES)
    assert [b.name for b in ins.se_blocks] == classifier.se_block_names
    for block in ins.se_blocks:
        assert block.feature_map.ndim == 2
        assert 0 <= block.feature_map.min() and block.feature_map.max() <= 1
        assert block.weights.ndim == 1 and 0 <= block.weights.min() and block.weights.max() <= 1
    cam = ins.cam()
    assert cam.ndim == 2 and 0 <= cam.min() and cam.max() <= 1
    assert ins.cam(0).shape == cam.shape


def test_inspect_copies_only_the_maps_asked_for(classifier):
    """The live overlay asks for the one map it shows: the verdict is the same, the other maps'
    feature maps are not fetched."""
    x = batch(classifier, 1)[0]
    full = classifier.inspect(x)
    cam = classifier.inspect(x, maps=["cam"])
    np.testing.assert_allclose(cam.probs, full.probs, atol=1e-6)
    assert cam.known == full.known and cam.se_blocks == []
    np.testing.assert_allclose(cam.cam(), full.cam(), atol=1e-6)
    with pytest.raises(ValueError, match="class activation map"):
        classifier.inspect(x, maps=["se1"]).cam()
    se = classifier.inspect(x, maps=["se2"])
    assert [b.name for b in se.se_blocks] == ["se2"] and se.features is None
    np.testing.assert_allclose(se.se_blocks[0].feature_map, full.se_blocks[1].feature_map,
                               atol=1e-6)


def test_prepare_takes_grey_colour_alpha_and_16_bit_frames(classifier):
    s = classifier.input_size
    for frame in (texture(0, 80), np.zeros((50, 70, 3), np.uint8), np.zeros((40, 40, 4), np.uint8),
                  texture(1, 90).astype(np.uint16) * 257):
        x = classifier.prepare(frame)
        assert x.shape == (s, s, 3) and x.dtype == np.uint8


def test_load_reads_a_file_and_names_an_unreadable_one(classifier, tmp_path):
    Image.fromarray(texture(2, 100)).save(tmp_path / "ok.png")
    x = classifier.load(tmp_path / "ok.png")
    assert x.shape == (classifier.input_size, classifier.input_size, 3)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="bad.png"):
        classifier.load(tmp_path / "bad.png")


def test_maps_are_normalised_and_resized():
    assert np.array_equal(normalize_map(np.zeros((3, 3))), np.zeros((3, 3), np.float32))
    m = normalize_map(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert m.min() == 0 and m.max() == 1
    assert upsample(m, 20, 30).shape == (20, 30)


def test_a_detector_from_another_model_is_refused_by_name(detector_bundle, tmp_path):
    """A bundle put together from two models' files (this card and model, another version's
    unknown.npz) gave the other model's unknown verdicts, with advice to re-export."""
    import json
    import shutil

    from inspector.engine import load_classifier
    from training.bundle import BundleError

    mixed = tmp_path / "mixed"
    shutil.copytree(detector_bundle, mixed)
    card = json.loads((mixed / "model_card.json").read_text())
    card["unknown_detection"]["threshold"] = card["unknown_detection"]["threshold"] + 1.5
    (mixed / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="not the one its model card records .*threshold"):
        load_classifier(mixed)
    assert load_classifier(detector_bundle).detector is not None   # its own: loads
