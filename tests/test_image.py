"""Image reading: formats, EXIF orientation, coordinates, and every bad-input case."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from ucn_gui.core import image as image_mod
from ucn_gui.core.image import ImageLoadError, load_image, prepare_image, read_rgb


@pytest.fixture
def photo(terrace_pair) -> np.ndarray:
    return read_rgb(terrace_pair[0])


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".bmp", ".webp"])
def test_formats(tmp_path, photo, ext):
    path = tmp_path / f"x{ext}"
    assert cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    img = load_image(path)
    assert img.original_size == (744, 496)
    assert img.gray.dtype == np.float32 and -0.5 <= img.gray.min() and img.gray.max() <= 0.5


def test_16bit_and_rgba_png(tmp_path, photo):
    p16 = tmp_path / "deep.png"
    cv2.imwrite(str(p16), (photo[:, :, 0].astype(np.uint16) * 257))
    assert np.array_equal(read_rgb(p16)[:, :, 0], photo[:, :, 0])
    rgba = tmp_path / "alpha.png"
    cv2.imwrite(str(rgba), np.dstack([cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), np.full(photo.shape[:2], 255, np.uint8)]))
    assert np.array_equal(read_rgb(rgba), photo)  # opaque: unchanged


@pytest.mark.parametrize("orientation,expected_shape", [(1, (496, 744)), (3, (496, 744)), (6, (744, 496)), (8, (744, 496))])
def test_exif_orientation_honoured(tmp_path, photo, orientation, expected_shape):
    path = tmp_path / "o.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(photo).save(path, exif=exif.tobytes(), quality=95)
    rgb = read_rgb(path)
    assert rgb.shape[:2] == expected_shape
    # Pillow's own transpose is the reference for what "upright" means.
    from PIL import ImageOps

    ref = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert np.abs(rgb.astype(int) - ref.astype(int)).mean() < 2.0


def test_max_side_keeps_original_coordinates(terrace_pair):
    img = load_image(terrace_pair[0], max_side=372)
    assert img.size == (372, 248) and img.original_size == (744, 496)
    net = np.array([[0, 0], [371, 247]], np.float32)
    orig = img.to_original(net)
    assert np.allclose(orig, [[0.5, 0.5], [742.5, 494.5]])
    assert np.allclose(img.to_network(orig), net)


def test_bad_inputs_name_file_and_reason(tmp_path, photo):
    cases = {}
    cases["missing"] = (tmp_path / "nope.jpg", "no such file")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    cases["empty"] = (empty, "empty")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    cases["text"] = (text, "not an image")
    ok, buf = cv2.imencode(".jpg", photo)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(buf.tobytes()[:200])
    cases["corrupt"] = (corrupt, "not an image")
    cases["folder"] = (tmp_path, "folder")
    for name, (path, reason) in cases.items():
        with pytest.raises(ImageLoadError) as err:
            load_image(path)
        assert str(path) in str(err.value) and reason in str(err.value), name


def test_absurdly_large_refused_before_decoding(tmp_path, monkeypatch):
    # A real 1000x1000 PNG with the limit lowered: the header check must refuse it.
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), np.zeros((1000, 1000), np.uint8))
    monkeypatch.setattr(image_mod, "MAX_PIXELS", 999_999)
    with pytest.raises(ImageLoadError, match="1000x1000.*limit"):
        load_image(path)


def test_huge_png_header_refused(tmp_path):
    # A PNG header claiming 20000 x 20000 (400 MP) with no real data behind it.
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")
    path = tmp_path / "bomb.png"
    path.write_bytes(png)
    with pytest.raises(ImageLoadError, match="20000x20000 = 400 MP is too large"):
        load_image(path)


def _png_header(path, width: int, height: int) -> None:
    """A PNG that claims width x height in its header, with no pixel data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IEND", b""))


def test_up_to_200_megapixels_is_not_refused(tmp_path):
    path = tmp_path / "claims-200mp.png"
    _png_header(path, 16000, 12500)
    with pytest.raises(ImageLoadError) as err:  # no pixel data: the decoder says so, the size check does not
        load_image(path)
    assert "too large" not in str(err.value) and "not an image" in str(err.value)


def test_12000_by_9000_jpeg_decoded_reduced_in_original_pixels(tmp_path, photo):
    path = tmp_path / "huge.jpg"
    big = cv2.resize(photo, (12000, 9000), interpolation=cv2.INTER_LINEAR)
    assert cv2.imwrite(str(path), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    img = load_image(path, max_side=640, keep_side=4096)
    assert img.original_size == (12000, 9000)
    assert img.rgb.shape == (4500, 6000, 3)  # decoded at 1/2, still >= 4096 on the long side
    assert img.rgb_scale == (2.0, 2.0)
    assert img.size == (640, 480) and img.scale == (12000 / 640, 9000 / 480)
    net = np.array([[0, 0], [639, 479], [320, 240]], np.float32)
    assert np.allclose(img.to_original(net), [[8.875, 8.875], [11990.125, 8990.125], [6008.875, 4508.875]])
    # The network sees what it would see from the whole decode, within JPEG noise.
    whole = prepare_image(big, max_side=640)
    assert np.abs(img.gray - whole.gray).mean() < 2 / 255
    # Without keep_side: full resolution, as before.
    assert load_image(path, max_side=640).rgb.shape == (9000, 12000, 3)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_reduced_decode_honours_exif_orientation(tmp_path, photo, ext):
    path = tmp_path / f"turned{ext}"
    exif = Image.Exif()
    exif[0x0112] = 6  # needs 90 degrees clockwise
    big = cv2.resize(photo, (2976, 1984), interpolation=cv2.INTER_LINEAR)
    Image.fromarray(big).save(path, exif=exif.tobytes(), **({"quality": 92} if ext == ".jpg" else {}))
    img = load_image(path, keep_side=700)
    assert img.original_size == (1984, 2976)
    assert img.rgb.shape == (744, 496, 3)  # 1/4 of the upright photo
    from PIL import ImageOps

    upright = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    ref = cv2.resize(upright, (496, 744), interpolation=cv2.INTER_AREA)
    assert np.abs(img.rgb.astype(int) - ref.astype(int)).mean() < 4.0


def _network_input(array) -> np.ndarray:
    return prepare_image(array).gray


@pytest.mark.parametrize("convert", [
    pytest.param(lambda rgb: rgb.astype(np.float32) / 255.0, id="float32 in [0, 1]"),
    pytest.param(lambda rgb: rgb.astype(np.float64) / 255.0, id="float64 in [0, 1]"),
    pytest.param(lambda rgb: rgb.astype(np.uint16) * 257, id="uint16"),
    pytest.param(lambda rgb: np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), id="RGBA"),
    pytest.param(lambda rgb: __import__("torch").from_numpy(rgb.copy()), id="torch uint8"),
    pytest.param(lambda rgb: __import__("torch").from_numpy(rgb.astype(np.float32) / 255.0), id="torch float"),
])
def test_every_accepted_array_gives_the_network_the_same_picture(photo, convert):
    want = _network_input(photo)
    got = _network_input(convert(photo))
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1.5 / 255  # one grey level of rounding


def test_grey_arrays_are_accepted(photo):
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    for a in (grey, grey[:, :, None], grey.astype(np.float32) / 255.0):
        assert np.abs(_network_input(a) - _network_input(photo)).max() <= 1.5 / 255


@pytest.mark.parametrize("bad, words", [
    (np.full((40, 50, 3), 200.0, np.float32), "float values span [200, 200]"),
    (np.full((40, 50), np.nan, np.float32), "float values span"),
    (np.zeros((40, 50, 3), np.int64), "dtype int64"),
    (np.zeros((3, 40, 50), np.uint8), "shape 3x40x50"),
    (np.zeros((0, 50, 3), np.uint8), "shape 0x50x3"),
    ([[1, 2], [3, 4]], "got list"),
])
def test_other_arrays_are_refused_saying_what_was_given(bad, words):
    with pytest.raises(ValueError) as info:
        prepare_image(bad, path="left.png")
    msg = str(info.value)
    assert msg.startswith("left.png:") and words in msg and "accepted: uint8, uint16 or float in [0, 1]" in msg


def test_float_tiff_in_0_255_loads_as_the_picture_not_white(tmp_path, photo):
    path = tmp_path / "float255.tif"
    assert cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR).astype(np.float32))
    got = read_rgb(path)
    assert abs(float(got.mean()) - float(photo.mean())) < 8  # scaled by its own bright end, not clipped to white
    assert np.corrcoef(got.ravel(), photo.ravel())[0, 1] > 0.99


def test_radiance_hdr_size_is_read_before_decoding(tmp_path, photo):
    small = tmp_path / "small.hdr"
    assert cv2.imwrite(str(small), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR).astype(np.float32) / 64.0)
    assert read_rgb(small).shape == photo.shape  # linear radiance, scaled to be visible
    huge = tmp_path / "huge.hdr"  # a header claiming 20000 x 20000 and a few bytes of pixels
    huge.write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 20000 +X 20000\n" + bytes(64))
    with pytest.raises(ImageLoadError, match=r"huge\.hdr: 20000x20000 = 400 MP is too large"):
        read_rgb(huge)


def test_transparency_is_flattened_on_grey_and_said(tmp_path, photo):
    """Issue 14: what a file stores under alpha 0 is arbitrary (here black): it is laid over grey."""
    from ucn_gui.core.image import ALPHA_BACKGROUND, open_photo

    alpha = np.zeros(photo.shape[:2], np.uint8)
    alpha[:, : photo.shape[1] // 2] = 255  # left half opaque, right half transparent over black
    bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
    bgr[:, photo.shape[1] // 2 :] = 0
    path = tmp_path / "logo.png"
    cv2.imwrite(str(path), np.dstack([bgr, alpha]))
    opened = open_photo(path)
    assert np.array_equal(opened.rgb[:, :300], photo[:, :300])
    assert (opened.rgb[:, -300:] == ALPHA_BACKGROUND).all()
    assert len(opened.notes) == 1 and "transparent" in opened.notes[0]
    assert open_photo(tmp_path / "logo.png").notes  # every load says it; the window tells the user once


@pytest.mark.parametrize("size", [(1, 1), (20, 400), (400, 31)])
def test_photos_too_small_to_match_are_refused(tmp_path, size):
    from ucn_gui.core.image import ImageLoadError, open_photo

    path = tmp_path / "tiny.png"
    cv2.imwrite(str(path), np.full((size[1], size[0], 3), 90, np.uint8))
    with pytest.raises(ImageLoadError, match=rf"tiny.png: {size[0]}x{size[1]} px is too small to match"):
        open_photo(path)
