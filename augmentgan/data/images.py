"""Decoding image files to uint8 arrays and the pixel operations every reader shares.

Conversion rules (documented in the README):

- EXIF orientation is applied (``PIL.ImageOps.exif_transpose``).
- Transparency (RGBA, LA, palette with a transparent colour, a gray or RGB PNG's colour key) is composited over **black**:
  ``value * alpha / 255``, so fully transparent pixels become 0.
- 16-bit gray images (``I;16``, ``I``) are scaled to 8 bits (``round(v / 257)``), never clipped at 255;
  a 32-bit integer image (``I``) with values outside 0..65535 is refused. 32-bit float images (``F``) follow the float rule of
  :func:`float_to_uint8`, decided on all the float images of a folder (:func:`float_scale`).
  Palette, 1-bit, CMYK, YCbCr, LAB and HSV images become RGB or L. 16-bit RGB files arrive as
  Pillow opens them, 8-bit RGB of each value's high byte (at most 1 under the rule above).
- A file of several frames (multi-page TIFF, animated PNG/WebP) gives its first frame, with a warning.
- An RGB image whose three channels are equal counts as grayscale.
- Colour to gray uses PIL's ITU-R 601-2 luma (``L = (19595 R + 38470 G + 7471 B + 2**15) >> 16``).
- ``size`` center-crops to the largest square (an odd extra row or column is cut at the
  bottom or right) and resizes it with Lanczos; pixels outside the crop never bleed in.
"""

from __future__ import annotations

import os
import warnings
from typing import Literal, Sequence, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from augmentgan.errors import AugmentganWarning, ConfigError, DataError

Channels = Union[Literal["auto"], int]
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
_FLOAT_SUFFIXES = frozenset({".tif", ".tiff"})


def check_channels(channels: object) -> Channels:
    """Normalise a channels option ("auto", 1, 3, "1", "3")."""
    if isinstance(channels, str) and channels.strip().lower() == "auto":
        return "auto"
    try:
        value = int(channels)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        value = None
    if value not in (1, 3):
        raise ConfigError(f"channels must be auto, 1 or 3, got {channels!r}")
    return value


def check_size(size: object) -> int | None:
    """Normalise a size option: None or a positive int (the side of the square output)."""
    if size is None:
        return None
    try:
        value = int(size)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        value = 0
    if value < 1 or value > 8192 or (isinstance(size, float) and size != value):
        raise ConfigError(f"size must be a whole number of pixels between 1 and 8192, got {size!r}")
    return value


def float_to_uint8(values: np.ndarray, where: str, scale: float | None = None) -> np.ndarray:
    """Float pixels to uint8: all values in [0, 1] are scaled by 255, else values in [0, 255] are rounded.

    The range is decided on the whole array, or given as ``scale`` (255 or 1: decided on a whole
    folder, :func:`float_scale`). NaN/inf and values outside [0, 255] are refused.
    """
    if values.size == 0:
        return values.astype(np.uint8)
    if not np.isfinite(values).all():
        raise DataError(f"{where}: contains NaN or infinite pixel values; clean the data before loading")
    lo, hi = float(values.min()), float(values.max())
    if lo < 0 or hi > 255:
        hint = " (for [-1, 1] data use (x + 1) / 2)" if lo >= -1 and hi <= 1 else ""
        raise DataError(f"{where}: float pixel values must lie in [0, 1] or [0, 255], found {lo:g}..{hi:g}; rescale them{hint}")
    if scale is None:
        scale = 255.0 if hi <= 1.0 else 1.0
    return np.rint(values.astype(np.float64) * scale).astype(np.uint8)


def float_scale(paths: Sequence[str | os.PathLike]) -> float | None:
    """The float rule decided on a whole set of files, as on a whole NPZ array: 255 when every pixel of
    every 32-bit float image (TIFF mode F) among ``paths`` is in [0, 1], else 1; None without float
    images. Only TIFFs are opened (no other format here decodes to floats); unreadable files and
    non-finite or out-of-range values are left to the decoder, which names them."""
    hi = None
    for path in paths:
        if os.path.splitext(os.fspath(path))[1].lower() not in _FLOAT_SUFFIXES:
            continue
        try:
            with Image.open(path) as opened:
                if opened.mode != "F":
                    continue
                values = np.asarray(opened)
        except Exception:  # noqa: BLE001 - the decoder reports it, naming the file
            continue
        finite = values[np.isfinite(values)]
        if finite.size:
            hi = float(finite.max()) if hi is None else max(hi, float(finite.max()))
    if hi is None:
        return None
    return 255.0 if hi <= 1.0 else 1.0


def sixteen_to_uint8(values: np.ndarray) -> np.ndarray:
    """16-bit values (0..65535; others clipped) to 8 bits by scaling: round(v / 257)."""
    v = np.clip(values.astype(np.int64), 0, 65535)
    return ((v * 255 + 32767) // 65535).astype(np.uint8)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 to (..., 1) uint8 with PIL's integer ITU-R 601-2 luma."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[..., None]


def is_gray(image: np.ndarray) -> bool:
    """(H, W, C) uint8: one channel, or three equal channels."""
    if image.shape[-1] == 1:
        return True
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def convert_channels(images: np.ndarray, channels: Channels) -> np.ndarray:
    """(N, H, W, C) or (H, W, C) uint8 to the requested channel count ("auto" keeps it)."""
    have = images.shape[-1]
    if channels == "auto" or channels == have:
        return images
    if channels == 1:
        return rgb_to_gray(images)
    return np.repeat(images, 3, axis=-1)


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 center-cropped to a square, then resized to (size, size, C) with Lanczos."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    pil = Image.fromarray(square[..., 0] if square.shape[-1] == 1 else square)
    out = np.asarray(pil.resize((size, size), Image.Resampling.LANCZOS))
    return out[..., None] if out.ndim == 2 else out


def resize_all(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, C) uint8 to (N, size, size, C) (see :func:`fit_square`)."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    try:
        out = np.empty((images.shape[0], size, size, images.shape[-1]), np.uint8)
    except MemoryError:  # found by the fuzz tests: data.size 8192 on 1,797 images asks for 120 GB
        need = images.shape[0] * size * size * images.shape[-1] / 1e9
        raise ConfigError(f"resizing {images.shape[0]} images to {size}x{size} needs {need:.1f} GB of memory, more than this machine gives; choose a smaller size (--size / data.size)") from None
    for i, image in enumerate(images):
        out[i] = fit_square(image, size)
    return out


def _composite_over_black(pil: Image.Image) -> np.ndarray:
    mode = "LA" if pil.mode in ("LA", "La", "L") else "RGBA"
    arr = np.asarray(pil.convert(mode)).astype(np.uint16)
    color, alpha = arr[..., :-1], arr[..., -1:]
    return ((color * alpha + 127) // 255).astype(np.uint8)


def pil_to_array(pil: Image.Image, where: str, float_scale: float | None = None) -> np.ndarray:
    """A loaded PIL image to (H, W, 1) or (H, W, 3) uint8 following the module's rules (``float_scale``:
    the float rule's scale decided on a whole folder, :func:`float_scale`; default: on this image)."""
    mode = pil.mode
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(pil)
        if mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):  # 32-bit integers past 16 bits: no rule fits
            raise DataError(f"{where}: a 32-bit integer image with values {values.min()}..{values.max()}, outside 16 bits (0..65535); "
                            "save it as 16-bit or as a float TIFF")
        arr = sixteen_to_uint8(values)
    elif mode == "F":
        arr = float_to_uint8(np.asarray(pil), where, float_scale)
    elif mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode in ("P", "L", "RGB") and "transparency" in pil.info):  # RGB/L: a tRNS colour key
        arr = _composite_over_black(pil)
    elif mode in ("L", "RGB"):
        arr = np.asarray(pil)
    elif mode == "1":
        arr = np.asarray(pil.convert("L"))
    else:  # P without transparency, CMYK, YCbCr, LAB, HSV, RGBX...
        arr = np.asarray(pil.convert("RGB"))
    return arr[..., None] if arr.ndim == 2 else arr


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def decode_image(
    path: str | os.PathLike, *, channels: Channels = "auto", size: int | None = None, multi_frame: list[str] | None = None,
    float_scale: float | None = None,
) -> np.ndarray:
    """Read one image file to (H, W, C) uint8.

    Only the first frame of a file of several (a multi-page TIFF, an animated PNG or WebP) is read:
    its path is appended to ``multi_frame`` when given (a folder reader warns once for all of
    them), else an :class:`AugmentganWarning` says so. ``float_scale``: see :func:`pil_to_array`.

    ``channels="auto"`` gives C=1 for grayscale images and C=3 otherwise; 1 or 3 force it.
    Any unreadable file (empty, truncated, not an image, over PIL's decompression-bomb limit)
    raises :class:`DataError` naming the file. Call it with ``DecompressionBombWarning`` turned
    into an error (see :func:`augmentgan.data.folder.read_folder`); the pixel limit is also
    checked here.
    """
    where = str(path)
    try:
        if os.path.getsize(path) == 0:
            raise DataError(f"cannot read image {where}: the file is empty (0 bytes); replace or remove it")
        with Image.open(path) as opened:
            limit = Image.MAX_IMAGE_PIXELS
            if limit is not None and opened.width * opened.height > limit:
                raise Image.DecompressionBombError(f"{opened.width}x{opened.height} pixels is over PIL's limit of {limit}")
            try:
                frames = int(getattr(opened, "n_frames", 1))
            except Exception:  # noqa: BLE001 - damaged later frames: the first may still read
                frames = 1
                opened.seek(0)
            if frames > 1:
                if multi_frame is None:
                    warnings.warn(f"{where} holds {frames} frames and only the first is read; save each frame as its own image to use them all",
                                  AugmentganWarning, stacklevel=2)
                else:
                    multi_frame.append(where)
            ImageOps.exif_transpose(opened, in_place=True)  # loads the pixels; no copy when upright
            arr = pil_to_array(opened, where, float_scale)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(
            f"image {where} is too large ({_one_line(err)}): it may be a decompression bomb; "
            "shrink it, remove it, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust it"
        ) from None
    except UnidentifiedImageError:
        raise DataError(f"cannot read image {where}: not an image or an unsupported format; replace or remove it") from None
    except Exception as err:  # PIL raises many types on corrupt data (OSError, SyntaxError, struct.error...)
        raise DataError(f"cannot read image {where}: {_one_line(err) or type(err).__name__}; replace or remove it") from None
    if size is not None:
        arr = fit_square(arr, size)
    if channels == "auto":
        return arr[..., :1] if arr.shape[-1] == 3 and is_gray(arr) else arr
    return convert_channels(arr, channels)
