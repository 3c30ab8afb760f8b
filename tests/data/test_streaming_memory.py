"""Memory stays bounded (issue 18): folders are decoded a window at a time, never all at once.

tracemalloc sees numpy's array allocations (and Python objects), not PIL's own buffers, so the
traced peak measures the decoded images a reader holds, independently of the CPU and the load.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from image_files import save_image

from augmentgan.data import describe
from augmentgan.data import folder as folder_module
from augmentgan.data.folder import read_folder, read_folder_index

SIDE, PER_CLASS, CLASSES, WINDOW = 64, 40, 3, 4
IMAGE_BYTES = SIDE * SIDE * 3
DATASET_BYTES = IMAGE_BYTES * PER_CLASS * CLASSES


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("stream") / "data"
    rng = np.random.default_rng(0)
    pixels = []
    for k in range(CLASSES):
        for i in range(PER_CLASS):
            img = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
            save_image(root / f"c{k}" / f"{i:03d}.png", img)
            pixels.append(img)
    return root, np.stack(pixels)


def _traced_peak(fn):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        return result, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_decoding_runs_a_bounded_window_ahead(big_folder, monkeypatch):
    root, _ = big_folder
    monkeypatch.setattr(folder_module, "DECODE_WINDOW", WINDOW)
    live, most = 0, 0
    real_decode = folder_module.decode_image

    def counting(*args, **kwargs):
        nonlocal live, most
        img = real_decode(*args, **kwargs)
        live += 1
        most = max(most, live)
        return img

    stream = folder_module._decode_stream(sorted(root.rglob("*.png")), channels="auto", size=None, workers=8)
    monkeypatch.setattr(folder_module, "decode_image", counting)
    for _ in stream:
        live -= 1  # the consumer took one decoded image
    assert 1 <= most <= WINDOW + 1


def test_read_folder_holds_one_copy_plus_the_window(big_folder, monkeypatch):
    root, pixels = big_folder
    monkeypatch.setattr(folder_module, "DECODE_WINDOW", WINDOW)
    data, peak = _traced_peak(lambda: read_folder(root, workers=2))
    np.testing.assert_array_equal(data.images, pixels)  # same arrays as before the streaming
    # one preallocated copy, the window and bookkeeping; the old list + np.stack held two copies
    assert peak < 1.25 * DATASET_BYTES, f"{peak / DATASET_BYTES:.2f} copies"


def test_inspect_of_a_folder_keeps_no_images(big_folder, monkeypatch):
    root, _ = big_folder
    monkeypatch.setattr(folder_module, "DECODE_WINDOW", WINDOW)
    (shape, labels, source, parent, names), peak = _traced_peak(lambda: read_folder_index(root, workers=2))
    assert shape == (SIDE, SIDE, 3) and names == ("c0", "c1", "c2")
    assert labels.tolist() == [0] * PER_CLASS + [1] * PER_CLASS + [2] * PER_CLASS
    assert (source == 0).all() and (parent == -1).all()
    assert peak < 0.25 * DATASET_BYTES, f"{peak / DATASET_BYTES:.2f} copies"
    summary, peak = _traced_peak(lambda: describe(root, workers=2))
    assert summary["count"] == PER_CLASS * CLASSES and summary["channels"] == 3
    assert peak < 0.25 * DATASET_BYTES, f"{peak / DATASET_BYTES:.2f} copies"


def test_mixed_gray_and_colour_become_rgb_in_place(tmp_path):
    gray = np.full((5, 5), 9, np.uint8)
    colour = np.zeros((5, 5, 3), np.uint8)
    colour[..., 0] = 200
    save_image(tmp_path / "a" / "0.png", gray)
    save_image(tmp_path / "a" / "1.png", colour)
    save_image(tmp_path / "b" / "2.png", gray)
    data = read_folder(tmp_path)
    assert data.image_shape == (5, 5, 3)
    np.testing.assert_array_equal(data.images[0], np.repeat(gray[..., None], 3, axis=-1))
    np.testing.assert_array_equal(data.images[1], colour)
    np.testing.assert_array_equal(data.images[2], np.repeat(gray[..., None], 3, axis=-1))
    assert read_folder_index(tmp_path)[0] == (5, 5, 3)


def _parts(scale: int = 1, side: int = 16) -> list:
    from augmentgan.data.types import LabeledImages

    rng = np.random.default_rng(1)
    sizes, names = (700 * scale, 0, 1500 * scale, 300 * scale), ("a", "b", "c")
    return [
        LabeledImages(rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8), rng.integers(0, 3, n), names, np.full(n, k, np.uint8), np.arange(n) - 1)
        for k, n in enumerate(sizes)
    ]


def test_labeled_parts_read_as_their_concatenation():
    from augmentgan.data.types import LabeledImages, LabeledParts

    parts = _parts()
    view, whole = LabeledParts(parts), LabeledImages.concatenate(parts)
    assert len(view) == len(whole) and view.image_shape == whole.image_shape
    for index in (5, -1, 2199, slice(650, 760), whole.labels == 1, np.array([2499, 0, 700, 699])):
        np.testing.assert_array_equal(view.images[index], whole.images[index])
    rows = np.flatnonzero(whole.source == 3)
    picked = view[rows]
    np.testing.assert_array_equal(picked.images, whole.images[rows])
    np.testing.assert_array_equal(picked.parent, whole.parent[rows])
    assert view[np.flatnonzero(whole.source == 2)] is parts[2]  # exactly one part: no copy
    both = view[np.flatnonzero(np.isin(whole.source, [0, 3]))]  # whole parts: a view of them
    assert isinstance(both, LabeledParts) and both.parts == (parts[0], parts[3])
    np.testing.assert_array_equal(both.images[np.arange(len(both))], whole.images[np.isin(whole.source, [0, 3])])
    np.testing.assert_array_equal(view.counts_by_class_and_source(), whole.counts_by_class_and_source())
    assert view.source_counts() == whole.source_counts()


def test_writing_parts_gives_the_concatenation_a_batch_at_a_time(tmp_path):
    from augmentgan.data.hdf5 import read_hdf5
    from augmentgan.data.io import save
    from augmentgan.data.types import LabeledImages, LabeledParts

    parts = _parts(scale=4, side=8)  # 10,000 rows: a 1,024-row batch is a tenth of them
    whole = LabeledImages.concatenate(parts)
    extra = {"note": np.arange(len(whole), dtype=np.float32)}
    path, peak = _traced_peak(lambda: save(LabeledParts(parts), tmp_path / "o.h5", extra=extra, compression=None))
    back = read_hdf5(path)
    for name in ("images", "labels", "source", "parent"):
        np.testing.assert_array_equal(getattr(back, name), getattr(whole, name))
    assert peak < 0.5 * whole.images.nbytes, f"{peak / whole.images.nbytes:.2f} copies"  # one 1,024-row batch, not the set
    small = [p[np.arange(min(len(p), 30))] for p in parts]
    folder = save(LabeledParts(small), tmp_path / "o", format="folder")
    np.testing.assert_array_equal(folder_module.read_folder(folder).images, LabeledImages.concatenate(small).images)
