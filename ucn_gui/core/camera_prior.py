"""A first guess of each photo's focal length for reconstruction: from EXIF when the photo
carries it, else COLMAP's own default (1.2 x the long side, a ~45 degree field of view).

    focal, from_exif = focal_prior("a.jpg", 4032, 3024)
"""
from __future__ import annotations

import os
import warnings

from PIL import Image, UnidentifiedImageError

DEFAULT_FOCAL_FACTOR = 1.2  # COLMAP's default_focal_length_factor
FULL_FRAME_WIDTH_MM = 36.0
_EXIF_IFD = 0x8769
_FOCAL_LENGTH = 0x920A
_FOCAL_35MM = 0xA405
_PLANE_X_RES = 0xA20E
_PLANE_UNIT = 0xA210
_EXIF_WIDTH, _EXIF_HEIGHT = 0xA002, 0xA003
_MM_PER_UNIT = {2: 25.4, 3: 10.0, 4: 1.0}  # inch, centimetre, millimetre


def _number(value: object) -> float | None:
    try:
        v = float(value)  # Pillow's IFDRational converts; a zero denominator gives nan
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return v if v > 0 and v == v and v != float("inf") else None


def _plausible(focal: float, long_side: int) -> bool:
    """Between a 157 degree fisheye and a 1,440 mm telephoto: outside that, a misread tag."""
    return 0.1 * long_side < focal < 40 * long_side


def focal_prior(path: str | os.PathLike, width: int, height: int) -> tuple[float, bool]:
    """(focal length in pixels of the width x height image, whether EXIF gave it).

    EXIF rules, in order: the 35 mm equivalent focal length (f35 / 36 mm x long side); the
    focal length in mm with the focal-plane resolution (pixels per mm of the sensor, rescaled
    from the size EXIF was written for). Anything missing or absurd gives the default.
    """
    long_side = max(width, height)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                exif = im.getexif().get_ifd(_EXIF_IFD)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        exif = {}
    f35 = _number(exif.get(_FOCAL_35MM))
    if f35 is not None and _plausible(f35 / FULL_FRAME_WIDTH_MM * long_side, long_side):
        return f35 / FULL_FRAME_WIDTH_MM * long_side, True
    f_mm, res, unit = _number(exif.get(_FOCAL_LENGTH)), _number(exif.get(_PLANE_X_RES)), exif.get(_PLANE_UNIT, 2)
    exif_long = max(_number(exif.get(_EXIF_WIDTH)) or 0, _number(exif.get(_EXIF_HEIGHT)) or 0)
    if f_mm is not None and res is not None and exif_long and unit in _MM_PER_UNIT:
        focal = f_mm * res / _MM_PER_UNIT[unit] * long_side / exif_long
        if _plausible(focal, long_side):
            return focal, True
    return DEFAULT_FOCAL_FACTOR * long_side, False
