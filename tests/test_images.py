"""training.images: decoding grey, colour and 16-bit files, and naming unreadable ones."""
import numpy as np
import pytest
from PIL import Image

from synth import texture
from training.images import ImageReadError, load_image


def test_load_image_handles_grey_colour_16bit_and_sizes(tmp_path):
    grey = tmp_path / "g.bmp"
    Image.fromarray(texture(0, 50)).save(grey)
    rgba = tmp_path / "c.png"
    Image.fromarray(np.zeros((30, 80, 4), np.uint8) + 200).save(rgba)
    tif16 = tmp_path / "d.tif"
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(tif16)
    for p in (grey, rgba, tif16):
        arr = load_image(p, 64)
        assert arr.shape == (64, 64, 3) and arr.dtype == np.uint8
    assert load_image(tif16, 8).max() == 255
    g = load_image(grey, 50)
    assert (g[..., 0] == g[..., 2]).all()  # grey replicated


def test_12_bit_data_in_16_bit_files_uses_its_own_full_scale(tmp_path):
    from training.images import to_model_input

    path = tmp_path / "cam12.tif"
    Image.fromarray(np.full((20, 20), 4095, np.uint16)).save(path)
    assert load_image(path, 20).min() == 255  # 12-bit white is white, not 6% grey
    half = to_model_input(np.full((8, 8), 2048, np.uint16), 8)
    assert 126 <= half.min() <= 129


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(ImageReadError, match="broken.png"):
        load_image(bad, 32)


def test_decode_pixels_keeps_16_bit_grey_and_reads_the_rest_like_decode_image(tmp_path):
    from training.images import decode_image, decode_pixels

    ramp = (np.arange(64, dtype=np.uint16) * 65).reshape(8, 8)  # 12-bit data in 16-bit words
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    raw = decode_pixels(tmp_path / "deep.png")
    assert raw.dtype == np.uint16 and raw.shape == (8, 8) and np.array_equal(raw, ramp)
    Image.fromarray(np.dstack([texture(0, 20), texture(1, 20), texture(2, 20)])).save(tmp_path / "c.png")
    assert np.array_equal(decode_pixels(tmp_path / "c.png"), decode_image(tmp_path / "c.png"))
    (tmp_path / "bad.png").write_bytes(b"broken")
    with pytest.raises(ImageReadError, match="bad.png"):
        decode_pixels(tmp_path / "bad.png")


def test_live_camera_sequences_and_review_see_the_same_pixels(tmp_path):
    """One pixel path: a file read by the camera's folder source (then to RGB, as every frame
    is) equals the same file decoded for review and training."""
    from inspector.camera import FolderCapture, to_rgb
    from training.images import decode_image

    Image.fromarray((np.arange(144, dtype=np.uint16) * 28).reshape(12, 12)).save(tmp_path / "a.png")
    Image.fromarray(np.dstack([texture(3, 16), texture(4, 16), texture(5, 16)])).save(tmp_path / "b.jpg")
    Image.fromarray(texture(2, 16)).save(tmp_path / "c.bmp")
    cap = FolderCapture(tmp_path)
    for path in cap.files:
        ok, frame = cap.read()
        assert ok
        assert np.array_equal(to_rgb(frame), decode_image(path)), path.name


def test_a_stack_of_frames_in_one_file_is_named_but_a_preview_page_is_not(tmp_path):
    from training.images import ImageReadError, decode_image, image_size

    a = Image.fromarray(np.full((40, 50), 10, np.uint8))
    b = Image.fromarray(np.full((40, 50), 200, np.uint8))
    a.save(tmp_path / "stack.tif", save_all=True, append_images=[b])
    with pytest.raises(ImageReadError, match="holds 2 images of the same size"):
        decode_image(tmp_path / "stack.tif")
    a.save(tmp_path / "preview.tif", save_all=True, append_images=[b.resize((10, 8))])
    assert decode_image(tmp_path / "preview.tif").shape == (40, 50, 3)
    # a thumbnail before the image: the image is read, not the thumbnail
    b.resize((10, 8)).save(tmp_path / "thumb_first.tif", save_all=True, append_images=[a])
    first = decode_image(tmp_path / "thumb_first.tif")
    assert first.shape == (40, 50, 3) and np.all(first == 10)
    assert image_size(tmp_path / "thumb_first.tif") == (40, 50)


def test_a_photo_stored_sideways_is_read_upright(tmp_path):
    from training.images import EXIF_ORIENTATION, decode_image, image_size

    a = np.zeros((20, 30, 3), np.uint8)
    a[:5, :, 0] = 255                       # a red band along the top edge as stored
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[EXIF_ORIENTATION] = 6              # shown turned 90 degrees clockwise
    img.save(tmp_path / "side.jpg", exif=exif, quality=95)
    up = decode_image(tmp_path / "side.jpg")
    assert up.shape == (30, 20, 3) and image_size(tmp_path / "side.jpg") == (30, 20)
    assert up[:, -3:, 0].mean() > 200 and up[:, :3, 0].mean() < 60   # the band now on the right
    img.save(tmp_path / "plain.jpg", quality=95)                       # no orientation: as stored
    assert decode_image(tmp_path / "plain.jpg").shape == (20, 30, 3)


@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
def test_an_uncompressed_tiff_turned_by_its_orientation_tag_is_read_upright(tmp_path, compression):
    """Pillow's memory-mapped read of an uncompressed file opened by path scrambled a grey TIFF
    with an Orientation of 5-8 (the pixels laid out at the turned size): a wrong verdict, no
    word."""
    from training.images import EXIF_ORIENTATION, decode_image, image_size

    upright = texture(3, 48, seed=1)[:, :30].copy()               # 48 x 30, not square
    img = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)))   # stored turned
    exif = img.getexif()
    exif[EXIF_ORIENTATION] = 6                                     # shown turned back
    img.save(tmp_path / "side.tif", exif=exif, compression=compression)
    assert image_size(tmp_path / "side.tif") == (48, 30)
    assert np.array_equal(decode_image(tmp_path / "side.tif")[..., 0], upright)


def test_an_empty_file_and_a_path_through_a_file_are_named_for_what_they_are(tmp_path):
    from training.images import ImageReadError, decode_image

    (tmp_path / "empty.bmp").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        decode_image(tmp_path / "empty.bmp")
    (tmp_path / "was_a_folder").write_text("")
    with pytest.raises(ImageReadError, match="file not found"):
        decode_image(tmp_path / "was_a_folder" / "x.png")


def _bmp_bytes(pixels: np.ndarray, bits: int, palette: np.ndarray | None = None,
               top_down: bool = False, header: int = 40, colours: int = 0,
               offset: int | None = None) -> bytes:
    """A BMP file written by hand (Pillow writes only some of the layouts cameras do)."""
    import struct

    h, w = pixels.shape[:2]
    stride = ((w * bits + 31) >> 3) & ~3
    rows = pixels if top_down else pixels[::-1]
    raw = b"".join(np.ascontiguousarray(r).tobytes().ljust(stride, b"\0") for r in rows)
    pal = b"" if palette is None else np.ascontiguousarray(palette, np.uint8).tobytes()
    dib = struct.pack("<IiiHHIIiiII", header, w, -h if top_down else h, 1, bits, 0, len(raw),
                      2835, 2835, colours, 0).ljust(header, b"\0")
    start = 14 + header + len(pal) if offset is None else offset
    return b"BM" + struct.pack("<IHHI", start + len(raw), 0, 0, start) + dib + pal + raw


def test_plain_bmps_read_without_pillow_give_pillows_pixels(tmp_path):
    """The numpy reader of plain BMPs (training.bmp) gives decode_image exactly what Pillow
    gives, for every layout it takes, and hands every other file to Pillow."""
    from PIL import Image

    from training import bmp
    from training.images import decode_image, decode_pixels

    rng = np.random.default_rng(3)
    grey_ramp = np.concatenate([np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1),
                                np.zeros((256, 1), np.uint8)], 1)
    colour_pal = rng.integers(0, 256, (256, 4), dtype=np.uint8)
    cases = {}
    for w, h in ((200, 200), (13, 7), (1, 5), (31, 2)):   # row padding of 0 to 3 bytes
        idx = rng.integers(0, 256, (h, w), dtype=np.uint8)
        bgr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for top in (False, True):
            cases[f"grey{w}x{h}{top}"] = (_bmp_bytes(idx, 8, grey_ramp, top), True)
            cases[f"pal{w}x{h}{top}"] = (_bmp_bytes(idx, 8, colour_pal, top), True)
            cases[f"rgb{w}x{h}{top}"] = (_bmp_bytes(bgr, 24, None, top), True)
        cases[f"v5{w}x{h}"] = (_bmp_bytes(bgr, 24, None, header=124), True)
    short = rng.integers(0, 16, (9, 11), dtype=np.uint8)
    cases["grey16"] = (_bmp_bytes(short, 8, grey_ramp[:16], colours=16), True)
    cases["nooffset"] = (_bmp_bytes(short, 8, grey_ramp, offset=54), True)
    # left to Pillow: a short colour palette, two colours, a truncated file
    cases["pal16"] = (_bmp_bytes(short, 8, colour_pal[:16], colours=16), False)
    cases["two"] = (_bmp_bytes(short % 2, 8, grey_ramp[[0, 255]], colours=2), False)
    cases["cut"] = (_bmp_bytes(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8), 24)[:-30],
                    False)
    for name, (data, plain) in cases.items():
        path = tmp_path / f"{name}.bmp"
        path.write_bytes(data)
        assert (bmp.read_plain_bmp(path, None) is not None) == plain, name
        if name == "cut":
            continue
        with Image.open(path) as img:
            want = np.asarray(img.convert("RGB"))
        got = decode_image(path)
        assert got.dtype == np.uint8 and got.shape == want.shape, name
        assert np.array_equal(got, want), name
        assert np.array_equal(decode_pixels(path), want), name
    # Pillow's own BMPs too (grey, palette, colour), and a file too large goes to Pillow
    for mode in ("L", "P", "RGB"):
        img = Image.fromarray(rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)).convert(mode)
        img.save(tmp_path / f"pil_{mode}.bmp")
        assert np.array_equal(decode_image(tmp_path / f"pil_{mode}.bmp"),
                              np.asarray(img.convert("RGB")))
    assert bmp.read_plain_bmp(tmp_path / "pil_L.bmp", 17 * 23 - 1) is None
    # sizes as Pillow reads them: a height with a top byte other than 0xFF is a huge unsigned
    # one, not a top-down image; a frame over Pillow's limit is refused from its header alone
    import struct

    odd = bytearray(cases["grey13x7True"][0])
    odd[22:26] = struct.pack("<i", -(2 ** 24 + 1))
    (tmp_path / "odd.bmp").write_bytes(bytes(odd))
    assert bmp.read_plain_bmp(tmp_path / "odd.bmp", None) is None
    huge = bytearray(cases["rgb13x7False"][0])
    huge[18:26] = struct.pack("<ii", 40000, 40000)
    (tmp_path / "huge.bmp").write_bytes(bytes(huge))
    assert bmp.read_plain_bmp(tmp_path / "huge.bmp", Image.MAX_IMAGE_PIXELS) is None
    with pytest.raises(ImageReadError, match="too large to read: 1600 megapixels, over the 179 this program reads"):
        decode_image(tmp_path / "huge.bmp")
    # a damaged file is still named for what it is (through Pillow)
    with pytest.raises(ImageReadError, match="damaged|truncated"):
        decode_image(tmp_path / "cut.bmp")


def test_chroma_tells_colour_images_from_grey_ones_saved_in_colour(tmp_path):
    """A grey image through a colour JPEG keeps its channels within a level or so: still grey. An
    even tint or coloured spots make it colour; a data set is in colour from a tenth of them."""
    from PIL import Image

    from training.images import COLOUR_CHROMA, chroma, colour_share, in_colour

    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(40, 220, (1, 32, 32, 1), dtype=np.uint8), 3, axis=-1)
    Image.fromarray(grey[0]).save(tmp_path / "g.jpg", quality=75)
    jpeg = np.asarray(Image.open(tmp_path / "g.jpg").convert("RGB"))[None]
    tinted = np.clip(grey.astype(int) + [6, 0, -6], 0, 255).astype(np.uint8)
    spots = grey.copy()
    spots[0, 8:20, 8:20, 0] = 250
    c = chroma(np.concatenate([grey, jpeg, tinted, spots]))
    assert c[0] == 0 and c[1] < COLOUR_CHROMA and c[2] >= COLOUR_CHROMA and c[3] >= COLOUR_CHROMA
    assert colour_share(np.concatenate([grey, tinted])) == 0.5
    assert not in_colour(np.concatenate([grey] * 11 + [tinted]))
    assert in_colour(np.concatenate([grey] * 9 + [tinted]))
    assert chroma(grey[:0]).shape == (0,) and colour_share(grey[:0]) == 0.0


def test_image_chroma_sees_a_large_image_as_training_does():
    """Pixel noise of a colour sensor on a grey surface averages away when a large image is
    shrunk to the model's input, as training reads it: not colour. A real tint stays."""
    from training.images import COLOUR_CHROMA, image_chroma

    rng = np.random.default_rng(1)
    grey = np.repeat(rng.integers(60, 200, (800, 800, 1)), 3, axis=-1).astype(np.float64)
    noisy = np.clip(grey + rng.normal(0, 2, grey.shape), 0, 255).astype(np.uint8)
    assert image_chroma(noisy[:100, :100]) >= COLOUR_CHROMA   # at full resolution: noise
    assert image_chroma(noisy) < COLOUR_CHROMA
    tinted = np.clip(grey + [8, 0, -8], 0, 255).astype(np.uint8)
    assert image_chroma(tinted) >= COLOUR_CHROMA
    assert image_chroma(grey[..., 0].astype(np.uint8)) == 0.0


def test_32_bit_files_are_scaled_by_their_numbers_or_refused_by_name(tmp_path):
    """A float file with a dead pixel stored as NaN or infinity used to come out blank ("no
    contrast"), a 32-bit integer file above 65535 white, an unsigned one above 2^31 as noise;
    all without a word."""
    from training.images import ImageReadError, decode_image

    g = texture(2, 32, seed=3).astype(np.float64)          # 0..255
    want = decode_image_of(tmp_path, "plain.tif", (g / 255).astype(np.float32))
    for bad in (np.nan, np.inf, -np.inf):
        a = (g / 255).astype(np.float32)
        a[5, 5] = bad
        got = decode_image_of(tmp_path, "dead.tif", a)
        same = np.ones_like(got, bool)
        same[5, 5] = False
        assert np.array_equal(got[same], want[same])       # the scale is the numbers'
    got = decode_image_of(tmp_path, "wide.tif", (g * 4000).astype(np.int32))   # up to ~1e6
    assert got.mean() == pytest.approx(g.mean() * 4000 / (2 ** 20 - 1) * 255, abs=1)   # not white
    from training.images import to_uint8

    for bits in (17, 25, 31):   # a full scale of 2^bits - 1 is white, counted in integers
        assert to_uint8(np.array([0, 2 ** (bits - 1), 2 ** bits - 1], np.int32)).tolist() == \
            [0, 128, 255]
    Image.fromarray(np.full((8, 8), -5, np.int32), mode="I").save(tmp_path / "neg.tif")
    with pytest.raises(ImageReadError, match="neg.tif: holds negative pixel values"):
        decode_image(tmp_path / "neg.tif")
    Image.fromarray(np.full((8, 8), np.nan, np.float32), mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(ImageReadError, match="nan.tif: holds no pixel values that are numbers"):
        decode_image(tmp_path / "nan.tif")


def test_a_tiff_of_a_layout_pillow_does_not_read_is_named_as_such(tmp_path):
    """64-bit floating point or two 16-bit channels: a TIFF, not "unknown or damaged format"."""
    from training.images import ImageReadError, decode_image

    (tmp_path / "odd.tif").write_bytes(b"II*\x00\x08\x00\x00\x00" + bytes(50))
    with pytest.raises(ImageReadError, match="odd.tif: a TIFF whose pixel layout cannot be read"):
        decode_image(tmp_path / "odd.tif")
    (tmp_path / "odd.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="unknown or damaged format"):
        decode_image(tmp_path / "odd.png")


def decode_image_of(tmp_path, name, arr):
    from training.images import decode_image

    Image.fromarray(arr).save(tmp_path / name)
    return decode_image(tmp_path / name)[..., 0]


def test_natural_order_reads_only_decimal_runs_as_numbers():
    """'²' is a digit to str.isdigit but not to the pattern: a file named img1²2.jpg kept a
    whole folder from opening (int('²') raised)."""
    from training.images import natural_key

    names = ["img10.png", "img2.png", "IMG1.png", "img1\u00b22.jpg", "img\u0663.png", "a.png"]
    assert sorted(names, key=natural_key) == ["a.png", "IMG1.png", "img1\u00b22.jpg", "img2.png",
                                              "img\u0663.png", "img10.png"]


# ---- hostile or damaged files (an audit, 2026-12-07) ------------------------------------------

def _tiff_two_pages_damaged(path, next_ifd):
    """A 4x4 grey TIFF whose pointer to a second page lies past the end or inside the pixels."""
    import struct

    entries = b""
    for tag, value in ((256, 4), (257, 4), (258, 8), (259, 1), (262, 1), (273, 8), (278, 4),
                       (279, 16)):
        entries += (struct.pack("<HHII", tag, 4, 1, value) if tag in (273, 279)
                    else struct.pack("<HHIHH", tag, 3, 1, value, 0))
    path.write_bytes(b"II*\x00" + struct.pack("<I", 24) + bytes(range(16))
                     + struct.pack("<H", 8) + entries + struct.pack("<I", next_ifd))


def test_damaged_tiffs_and_any_decoder_surprise_name_the_file(tmp_path, monkeypatch):
    """Pillow raised TypeError ("Missing dimensions") for a TIFF whose next page is damaged, and
    that stopped a whole data check with no file named; any exception of a decoder is the file's
    problem, said with its name (MemoryError stays "not enough memory")."""
    from training import images

    for i, next_ifd in enumerate((10_000_000, 9, 7)):
        path = tmp_path / f"damaged{i}.tif"
        _tiff_two_pages_damaged(path, next_ifd)
        try:
            images.decode_image(path)
        except ImageReadError as exc:
            assert str(path) in str(exc)
    path = tmp_path / "fine.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)

    def surprise(*args, **kwargs):
        raise TypeError("Missing dimensions")

    monkeypatch.setattr(images.Image, "open", surprise)
    with pytest.raises(ImageReadError, match="damaged image data .TypeError: Missing dimensions"):
        images.decode_image(path)


def test_a_16_bit_colour_file_is_read_at_its_own_full_scale(tmp_path):
    """Pillow reads a 48-bit PNG by each sample's high byte: 12-bit colour data (0..4095) came
    out 0..15, nearly black, and was classified without a word."""
    import struct
    import zlib

    h, w = 16, 16
    img = np.zeros((h, w, 3), np.uint16)
    img[..., 0] = np.linspace(0, 4095, w, dtype=np.uint16)[None, :]
    img[..., 1] = 2048

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)

    raw = b"".join(b"\x00" + img[y].astype(">u2").tobytes() for y in range(h))
    path = tmp_path / "rgb48.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    from training.images import decode_image

    arr = decode_image(path)
    assert arr.dtype == np.uint8 and arr.shape == (h, w, 3)
    assert arr[..., 0].max() >= 250 and 100 <= arr[0, 0, 1] <= 160   # not 0..15
    assert arr[:, 0, 0].max() <= 5 and arr[..., 2].max() == 0


def test_a_file_of_another_format_under_an_image_name_is_not_handed_to_its_plugin(tmp_path):
    """A PostScript file named x.png went to Pillow's EPS plugin, which runs Ghostscript on it."""
    from training.images import decode_image, image_size

    path = tmp_path / "eps_as.png"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(ImageReadError, match="not an image file"):
        decode_image(path)
    assert image_size(path) is None


def test_a_file_of_very_many_pages_is_refused_after_a_bounded_look(tmp_path, monkeypatch):
    """``n_frames`` walked every page of a 200,000-page TIFF (300 s) before the limit applied;
    the pages are looked at one seek at a time, up to ``MAX_PAGES``."""
    from training import images

    path = tmp_path / "pages.tif"
    frames = [Image.fromarray(np.full((2, 2), i, np.uint8)) for i in range(12)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    monkeypatch.setattr(images, "MAX_PAGES", 5)
    with Image.open(path) as img:
        assert images.main_page(img) == (0, 5)
    with pytest.raises(ImageReadError, match="holds 5 images"):
        images.decode_image(path)
    monkeypatch.setattr(images, "MAX_PAGES", 1000)
    with pytest.raises(ImageReadError, match="holds 12 images"):
        images.decode_image(path)


def _tiff_pages(pages):
    """Little-endian uncompressed chunky RGB TIFF bytes of ``pages`` (HxWx3 uint8/uint16)."""
    import struct

    out = bytearray(b"II*\x00\0\0\0\0")
    link = 4
    for arr in pages:
        h, w, c = arr.shape
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        data_at = len(out)
        out += data + b"\0" * (len(data) % 2)
        bits_at = len(out)
        out += struct.pack("<HHH", *[arr.dtype.itemsize * 8] * 3)
        tags = [(256, 4, w), (257, 4, h), (258, 3, bits_at), (259, 3, 1), (262, 3, 2),
                (273, 4, data_at), (277, 3, 3), (278, 4, h), (279, 4, len(data)), (284, 3, 1)]
        struct.pack_into("<I", out, link, len(out))
        out += struct.pack("<H", len(tags))
        for tag, kind, value in tags:
            count = 3 if tag == 258 else 1
            out += (struct.pack("<HHII", tag, kind, count, value) if kind == 4 or count > 1
                    else struct.pack("<HHIHH", tag, kind, count, value, 0))
        link = len(out)
        out += b"\0\0\0\0"
    return bytes(out)


def test_the_16_bit_colour_path_keeps_565_bmps_later_pages_and_exif_orientation(tmp_path):
    """A review: the 16-bit colour reader took a 5-6-5 BMP ("BGR;16") for 48-bit colour and
    refused it; read a multi-page TIFF's first page (a thumbnail) instead of its image, or
    refused it; and ignored a PNG's EXIF orientation (IMREAD_UNCHANGED)."""
    import struct
    import zlib

    import cv2

    from training.images import decode_image

    h, w = 6, 10
    rows = b"".join(struct.pack("<H", 0xF800 if y >= h - 2 else 0) * w + b"\0" * ((-2 * w) % 4)
                    for y in range(h))   # bottom-up: the top two rows red
    hdr = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 16, 3, len(rows), 2835, 2835, 0, 0)
    masks = struct.pack("<III", 0xF800, 0x07E0, 0x001F)
    off = 14 + len(hdr) + len(masks)
    for name in ("rgb565.bmp", "rgb565.tif"):   # any name: the BMP decoder reads it
        path = tmp_path / name
        path.write_bytes(b"BM" + struct.pack("<IHHI", off + len(rows), 0, 0, off) + hdr + masks
                         + rows)
        arr = decode_image(path)
        assert arr.shape == (h, w, 3) and arr[0, 0, 0] >= 240 and arr[-1, 0, 0] == 0

    big = np.zeros((30, 50, 3), np.uint16)
    big[:10, :, 0] = 4000
    for thumb in (np.full((8, 8, 3), 200, np.uint8), np.full((8, 8, 3), 3000, np.uint16)):
        path = tmp_path / f"thumb{thumb.dtype}.tif"
        path.write_bytes(_tiff_pages([thumb, big]))
        assert decode_image(path).shape == (30, 50, 3)

    ex = Image.Exif()
    ex[0x0112] = 6   # turned a quarter: stored 30 x 50, shown 50 x 30
    eb = ex.tobytes()[6:]
    path = tmp_path / "turned48.png"
    cv2.imwrite(str(path), big)
    data = path.read_bytes()
    i = data.index(b"IDAT") - 4
    path.write_bytes(data[:i] + struct.pack(">I", len(eb)) + b"eXIf" + eb
                     + struct.pack(">I", zlib.crc32(b"eXIf" + eb) & 0xffffffff) + data[i:])
    assert decode_image(path).shape == (50, 30, 3)
