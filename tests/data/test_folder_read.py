"""Reading ImageFolder trees: classes, pixel conversions, sizes, progress and every bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from image_files import save_image
from PIL import Image

from augmentgan.data.folder import read_folder
from augmentgan.errors import AugmentganWarning, DataError


def test_classes_order_and_pixels_follow_torchvision(image_folder):
    root, pixels = image_folder
    data = read_folder(root)
    assert data.class_names == ("cat", "dog", "eel")
    assert data.class_counts().tolist() == [4, 3, 2]
    expected = np.stack([a for name in ("cat", "dog", "eel") for a in pixels[name]])
    np.testing.assert_array_equal(data.images, expected)
    assert data.labels.tolist() == [0] * 4 + [1] * 3 + [2] * 2
    assert (data.source == 0).all() and (data.parent == -1).all()


def test_nested_folders_read_hidden_and_foreign_files_ignored(tmp_path):
    root = tmp_path / "d"
    img = np.full((4, 4), 7, np.uint8)
    save_image(root / "a" / "x.png", img)
    save_image(root / "a" / "sub" / "y.png", img + 1)
    save_image(root / "b" / "z.PNG", img + 2)
    (root / "a" / ".hidden.png").write_bytes(b"not an image")
    (root / "a" / "notes.txt").write_text("hello")
    (root / "b" / ".cache").mkdir()
    (root / "b" / ".cache" / "broken.png").write_bytes(b"")
    (root / ".trash").mkdir()
    (root / "readme.md").write_text("x")
    data = read_folder(root)
    assert data.class_names == ("a", "b")
    assert data.images[:, 0, 0, 0].tolist() == [7, 8, 9]


def test_symlinked_folders_are_read_once_and_loops_are_not_followed(tmp_path):
    root = tmp_path / "d"
    img = np.full((4, 4), 7, np.uint8)
    for i in range(3):
        save_image(root / "a" / f"{i}.png", img)
    save_image(root / "b" / "z.png", img + 1)
    save_image(tmp_path / "shared" / "s.png", img + 2)
    (root / "a" / "up").symlink_to("..")  # a loop: the class folder's parent, which holds a and b
    (root / "a" / "self").symlink_to(".")
    (root / "b" / "shared").symlink_to(tmp_path / "shared")  # a real folder elsewhere: read
    (root / "b" / "again").symlink_to(tmp_path / "shared")  # the same folder a second time: read once
    with pytest.warns(AugmentganWarning, match="leads to a folder read already"):
        data = read_folder(root)
    assert data.class_counts().tolist() == [3, 2]  # 1,692 images (b's among a's) when the loop was followed
    assert sorted(data.images[data.labels == 1][:, 0, 0, 0].tolist()) == [8, 9]


def test_channels_auto_is_gray_only_when_every_image_is_gray(tmp_path):
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    root = tmp_path / "gray"
    save_image(root / "a" / "l.png", gray)
    save_image(root / "b" / "rgb_equal.png", np.stack([gray] * 3, -1))
    data = read_folder(root)
    assert data.channels == 1
    np.testing.assert_array_equal(data.images[..., 0], np.stack([gray, gray]))

    color = np.zeros((4, 4, 3), np.uint8)
    color[..., 0] = 200
    save_image(root / "b" / "color.png", color)
    data = read_folder(root)
    assert data.channels == 3
    np.testing.assert_array_equal(data.images[0], np.stack([gray] * 3, -1))  # gray repeated, not altered
    np.testing.assert_array_equal(data.images[1], color)  # b/color.png sorts before b/rgb_equal.png
    np.testing.assert_array_equal(data.images[2], np.stack([gray] * 3, -1))


def test_forced_channels(tmp_path):
    rng = np.random.default_rng(0)
    color = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (5, 5), dtype=np.uint8)
    root = tmp_path / "r"
    save_image(root / "a" / "c.png", color)
    save_image(root / "b" / "g.png", gray)
    one = read_folder(root, channels=1)
    np.testing.assert_array_equal(one.images[0, ..., 0], np.asarray(Image.fromarray(color).convert("L")))
    np.testing.assert_array_equal(one.images[1, ..., 0], gray)
    three = read_folder(root, channels=3)
    np.testing.assert_array_equal(three.images[1], np.stack([gray] * 3, -1))


def test_palette_rgba_la_and_16bit_conversions(tmp_path):
    root = tmp_path / "modes"
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    palette = Image.fromarray(rgb).quantize(colors=8)
    (root / "p").mkdir(parents=True)
    palette.save(root / "p" / "pal.png")
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = 128
    rgba[0, 0, 3] = 0
    save_image(root / "q" / "rgba.png", rgba)
    sixteen = np.array([[0, 257 * 100, 65535, 1000]] * 4, np.uint16)
    save_image(root / "r" / "deep.png", sixteen)

    data = read_folder(root, channels=3)
    np.testing.assert_array_equal(data.images[0], np.asarray(palette.convert("RGB")))
    blended = (np.array([200, 100, 50]) * 128 + 127) // 255  # over black
    np.testing.assert_array_equal(data.images[1, 1, 1], blended)
    np.testing.assert_array_equal(data.images[1, 0, 0], [0, 0, 0])
    assert data.images[2, 0, :, 0].tolist() == [0, 100, 255, 4]  # scaled by 1/257, not clipped


def test_la_image_is_gray_composited_over_black(tmp_path):
    la = np.zeros((3, 3, 2), np.uint8)
    la[..., 0], la[..., 1] = 255, 51
    save_image(tmp_path / "r" / "a" / "la.png", la)
    data = read_folder(tmp_path / "r")
    assert data.channels == 1 and (data.images == 51).all()


def test_a_png_colour_key_is_transparency_and_32_bit_integers_past_16_bits_are_refused(tmp_path):
    gray = np.full((4, 4), 200, np.uint8)
    gray[0, 0] = 77
    (tmp_path / "k" / "a").mkdir(parents=True)
    Image.fromarray(gray).save(tmp_path / "k" / "a" / "key.png", transparency=77)  # a tRNS colour key
    rgb = np.full((4, 4, 3), 200, np.uint8)
    rgb[0, 0] = (1, 2, 3)
    (tmp_path / "k" / "b").mkdir()
    Image.fromarray(rgb).save(tmp_path / "k" / "b" / "key.png", transparency=(1, 2, 3))
    data = read_folder(tmp_path / "k", channels=3)
    assert data.images[:, 0, 0].tolist() == [[0, 0, 0]] * 2 and (data.images[:, 1:] == 200).all()  # over black, the rest kept
    wide = np.full((4, 4), 1_000_000, np.int32)
    (tmp_path / "w" / "a").mkdir(parents=True)
    Image.fromarray(wide).save(tmp_path / "w" / "a" / "i32.tif")
    with pytest.raises(DataError, match=r"i32.tif.*32-bit integer image with values 1000000..1000000, outside 16 bits"):
        read_folder(tmp_path / "w")


def test_a_class_folder_name_that_is_not_utf8_is_refused_in_one_line(tmp_path):
    import os

    root = os.fsencode(tmp_path / "l1")
    for name in (b"caf\xe9", b"tea"):
        save_image(tmp_path / os.fsdecode(os.path.join(b"l1", name)) / "0.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match=r"caf\\xe9.* not UTF-8 text; rename it") as err:
        read_folder(os.fsdecode(root))
    assert "\n" not in str(err.value)


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((4, 8, 3), np.uint8)  # 4 high, 8 wide
    arr[:, :2] = 255  # white left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    save_image(tmp_path / "r" / "a" / "rot.png", arr, exif=exif)
    data = read_folder(tmp_path / "r", channels=3)
    assert data.image_shape == (8, 4, 3)
    np.testing.assert_array_equal(data.images[0], np.rot90(arr, k=-1))


def test_size_center_crops_then_resizes(tmp_path):
    arr = np.zeros((8, 12, 3), np.uint8)
    arr[:, :, 1] = 180
    arr[:, :2] = (255, 0, 0)  # cropped away
    arr[:, -2:] = (255, 0, 0)
    save_image(tmp_path / "r" / "a" / "wide.png", arr)
    save_image(tmp_path / "r" / "b" / "small.png", np.full((2, 2, 3), 9, np.uint8))
    data = read_folder(tmp_path / "r", size=4)
    assert data.image_shape == (4, 4, 3)
    assert (data.images[0] == (0, 180, 0)).all()
    assert (data.images[1] == 9).all()


def test_mixed_sizes_need_size(tmp_path):
    save_image(tmp_path / "r" / "a" / "one.png", np.zeros((4, 4), np.uint8))
    save_image(tmp_path / "r" / "b" / "two.png", np.zeros((6, 4), np.uint8))
    with pytest.raises(DataError, match=r"two\.png is 4x6 .*one\.png is 4x4.*--size"):
        read_folder(tmp_path / "r")


def _truncated_png(path):
    save_image(path, np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:60])


BAD_FILES = {
    "empty.png": lambda p: p.write_bytes(b""),
    "truncated.png": _truncated_png,
    "text.jpg": lambda p: p.write_text("this is not a jpeg"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_image_is_reported_or_skipped(image_folder, name):
    root, _ = image_folder
    BAD_FILES[name](root / "dog" / name)
    with pytest.raises(DataError) as info:
        read_folder(root, workers=2)
    message = str(info.value)
    assert name in message and "--skip-bad" in message and "\n" not in message
    with pytest.warns(AugmentganWarning, match=name):
        data = read_folder(root, skip_bad=True)
    assert data.class_counts().tolist() == [4, 3, 2]


def test_skipping_every_image_of_a_class_is_an_error(tmp_path):
    save_image(tmp_path / "r" / "a" / "ok.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "r" / "b").mkdir()
    (tmp_path / "r" / "b" / "bad.png").write_bytes(b"")
    with pytest.warns(AugmentganWarning), pytest.raises(DataError, match="'b'.*no readable images"):
        read_folder(tmp_path / "r", skip_bad=True)


@pytest.mark.parametrize("limit", [40, 20])  # 64 pixels: over the warning limit, over twice the limit
def test_decompression_bomb_is_an_error(image_folder, monkeypatch, limit):
    root, _ = image_folder
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning must not escape as a mere warning
        with pytest.raises(DataError, match=r"cat/img0\.png is too large.*decompression bomb"):
            read_folder(root, workers=2)


def test_empty_and_missing_trees(tmp_path):
    with pytest.raises(DataError, match="does not exist|is not a folder"):
        read_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class subfolders"):
        read_folder(tmp_path / "empty")
    save_image(tmp_path / "flat" / "x.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match="no class subfolders"):
        read_folder(tmp_path / "flat")
    save_image(tmp_path / "t" / "a" / "x.png", np.zeros((2, 2), np.uint8))
    (tmp_path / "t" / "b").mkdir()
    (tmp_path / "t" / "b" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"class folder .*t/b has no images"):
        read_folder(tmp_path / "t")


def test_progress_reports_until_done(tmp_path, monkeypatch):
    import augmentgan.data.folder as folder

    monkeypatch.setattr(folder, "PROGRESS_EVERY", 4)
    for i in range(10):
        save_image(tmp_path / "r" / f"c{i % 2}" / f"{i}.png", np.full((2, 2), i, np.uint8))
    events = []
    read_folder(tmp_path / "r", callback=events.append)
    assert {e.stage for e in events} == {"load"} and all(e.total == 10 for e in events)
    assert [e.done for e in events] == [0, 4, 8, 10]


def test_skipped_images_renumber_the_parents_of_derived_rows(tmp_path):
    # rows after a skipped file move up one; their parents pointed at the wrong rows
    from augmentgan.data.folder import write_folder
    from augmentgan.data.types import LabeledImages

    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (8, 4, 4, 3), dtype=np.uint8)
    images[6], images[7] = images[4], images[5]  # copies of rows 4 and 5
    data = LabeledImages(images, np.arange(8) % 2, ("a", "b"), np.array([0] * 6 + [4, 4], np.uint8), np.array([-1] * 6 + [4, 5]))
    root = write_folder(data, tmp_path / "prov")
    (root / "a" / "real-00002.png").write_text("junk\n")
    with pytest.warns(AugmentganWarning, match=r"skipped 1 unreadable image\(s\)") as caught:
        got = read_folder(root, skip_bad=True)
    assert "parent -1" not in str(caught[0].message)
    assert got.parent.tolist() == [-1] * 5 + [3, 4]
    for row in np.flatnonzero(got.parent >= 0):
        np.testing.assert_array_equal(got.images[got.parent[row]], got.images[row])
    (root / "a" / "real-00004.png").write_text("junk\n")  # the parent of a copy itself: it loses its parent
    with pytest.warns(AugmentganWarning, match=r"skipped 2 .*1 derived sample\(s\) whose parent was among them now have parent -1"):
        got = read_folder(root, skip_bad=True)
    assert got.parent.tolist() == [-1] * 5 + [3]
    np.testing.assert_array_equal(got.images[3], got.images[5])


def test_a_multi_frame_file_warns_that_only_its_first_frame_is_read(tmp_path):
    frames = [Image.fromarray(np.full((4, 4), v, np.uint8)) for v in (10, 20, 30)]
    (tmp_path / "d" / "a").mkdir(parents=True)
    frames[0].save(tmp_path / "d" / "a" / "stack.tif", save_all=True, append_images=frames[1:])
    save_image(tmp_path / "d" / "a" / "one.png", np.full((4, 4), 5, np.uint8))
    with pytest.warns(AugmentganWarning, match=r"1 image file\(s\) under .* hold several frames and only the first was read: a/stack.tif") as caught:
        data = read_folder(tmp_path / "d")
    assert len([w for w in caught if "frames" in str(w.message)]) == 1
    assert sorted(data.images[:, 0, 0, 0].tolist()) == [5, 10]


def test_float_tiffs_are_scaled_over_the_whole_folder_as_arrays_are(tmp_path):
    # a [0, 255] float image whose values all happen to be <= 1 was multiplied by 255 on its own
    (tmp_path / "d" / "a").mkdir(parents=True)
    Image.fromarray(np.array([[0.0, 1.0], [0.5, 1.0]], np.float32)).save(tmp_path / "d" / "a" / "dark.tif")
    Image.fromarray(np.array([[0.0, 255.0], [100.0, 7.0]], np.float32)).save(tmp_path / "d" / "a" / "light.tif")
    data = read_folder(tmp_path / "d")
    assert data.images[0, ..., 0].tolist() == [[0, 1], [0, 1]]  # rounded, like the rest of a [0, 255] set
    assert data.images[1, ..., 0].tolist() == [[0, 255], [100, 7]]
    (tmp_path / "d" / "a" / "light.tif").unlink()  # every float image in [0, 1]: scaled by 255
    assert read_folder(tmp_path / "d").images[0, ..., 0].tolist() == [[0, 255], [128, 255]]
