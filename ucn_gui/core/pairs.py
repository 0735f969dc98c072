"""Which image pairs a batch run matches: a pairs file, or all / neighbouring images of a folder.

    pairs = pairs_from_spec("pairs.txt", image_dir)          # one 'name0 name1' per line (hloc / COLMAP)
    pairs = pairs_from_spec("exhaustive", image_dir)         # every pair of the folder's images
    pairs = pairs_from_spec("sequential:5", image_dir)       # each image with the next 5 (sorted by name)

Image names are paths relative to the image folder, with '/' separators, as hloc and
COLMAP name them. A pair is a tuple (name0, name1); image 0 is the one whose query
points are matched into image 1.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# What a folder listing counts as an image (case-insensitive); a pairs file may name anything.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
_SEQUENTIAL = re.compile(r"sequential:(\d+)")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

Pair = tuple[str, str]


class PairsError(ValueError):
    """A pairs file or pair specification that cannot be used; the message names the file (and line)."""


@dataclass
class PairList:
    """The pairs of a run, in the order they are matched, each unordered pair once."""

    pairs: list[Pair]
    source: str  # what they came from, for messages: a file name, 'exhaustive' or 'sequential:K'
    duplicates: int = 0  # pairs listed again (in either order) and ignored
    first_duplicate_line: int | None = None
    lines: dict[Pair, int] = field(default_factory=dict)  # line of each pair in a pairs file

    @property
    def images(self) -> list[str]:
        """Every image named by a pair, in order of first appearance."""
        return list(dict.fromkeys(name for pair in self.pairs for name in pair))


def list_images(folder: str | os.PathLike, exclude: str | os.PathLike | None = None) -> list[str]:
    """Image files under ``folder`` (recursively, hidden files and folders skipped), sorted, as
    names relative to it. ``exclude``: a folder inside it that is left out (a run's output)."""
    root = Path(folder)
    skip = Path(os.path.realpath(exclude)) if exclude is not None else None
    names = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and Path(os.path.realpath(here / d)) != skip)
        for f in filenames:
            if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES):
                names.append((here / f).relative_to(root).as_posix())
    return sorted(names)


def exhaustive_pairs(names: list[str]) -> list[Pair]:
    """(a, b) for every a listed before b: n (n - 1) / 2 pairs."""
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]


def sequential_pairs(names: list[str], k: int) -> list[Pair]:
    """Each image with the next k in the list (video frames, a walk around an object)."""
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:i + 1 + k]]


def check_name(name: str) -> str | None:
    """Why ``name`` cannot be an image name relative to the image folder, or None when it can."""
    p = PurePosixPath(name)
    if p.is_absolute() or re.match(r"[A-Za-z]:[\\/]", name):
        return f"{name!r} is an absolute path; names are relative to --image-dir"
    if ".." in p.parts:
        return f"{name!r} leaves the image folder ('..'); names are relative to --image-dir"
    return None


def read_pairs_file(path: str | os.PathLike) -> PairList:
    """Parse a pairs file: one ``name0 name1`` per line, the hloc and COLMAP convention.

    Blank lines and lines starting with '#' are skipped; further columns are allowed only when
    they are numbers (the posed scenes' pairs.txt carry angles and match counts there). A pair
    listed again, in either order, is kept once. PairsError names the line of anything else.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise PairsError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise PairsError(f"{path} is a folder, not a pairs file") from None
    except UnicodeDecodeError:
        raise PairsError(f"{path}: not a text file (not UTF-8)") from None
    except OSError as exc:
        raise PairsError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    out = PairList([], str(path))
    seen: set[frozenset[str]] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{path} line {number}"
        if len(fields) < 2:
            raise PairsError(f"{where}: expected 'name0 name1', got one name ({fields[0]!r})")
        extra = next((f for f in fields[2:] if not _NUMBER.fullmatch(f)), None)
        if extra is not None:
            raise PairsError(f"{where}: expected 'name0 name1', got {len(fields)} names (columns after the "
                             f"second must be numbers; {extra!r} is not)")
        a, b = fields[0], fields[1]
        for name in (a, b):
            why = check_name(name)
            if why:
                raise PairsError(f"{where}: {why}")
        if a == b:
            raise PairsError(f"{where}: pairs {a!r} with itself")
        key = frozenset((a, b))
        if key in seen:
            out.duplicates += 1
            out.first_duplicate_line = out.first_duplicate_line or number
            continue
        seen.add(key)
        out.pairs.append((a, b))
        out.lines[(a, b)] = number
    if not out.pairs:
        raise PairsError(f"{path}: holds no pairs (one 'name0 name1' per line)")
    return out


def is_generator(spec: str) -> bool:
    """Whether ``spec`` names a rule over the folder ('exhaustive', 'sequential:K') rather than a file."""
    return spec in ("exhaustive", "sequential") or spec.startswith("sequential:")


def pairs_from_spec(spec: str, image_dir: str | os.PathLike, exclude: str | os.PathLike | None = None) -> PairList:
    """'exhaustive', 'sequential:K' (over the images of ``image_dir``, sorted by name) or a pairs file.

    The two keywords win over a file of the same name (name such a file ./exhaustive).
    Every image a pair names must exist in ``image_dir``; PairsError otherwise.
    """
    image_dir = Path(image_dir)
    seq = _SEQUENTIAL.fullmatch(spec)
    if is_generator(spec):
        if spec != "exhaustive" and (seq is None or int(seq.group(1)) < 1):
            raise PairsError(f"--pairs {spec}: expected sequential:K with a whole number K >= 1, e.g. sequential:5")
        names = list_images(image_dir, exclude)
        spaced = next((n for n in names if any(c.isspace() for c in n)), None)
        if spaced is not None:  # a pairs file (ours, hloc's, COLMAP's) separates names by white space
            raise PairsError(f"--image-dir {image_dir}: {spaced!r} has white space in its name, which a pairs "
                             "file cannot hold; rename it")
        if len(names) < 2:
            raise PairsError(f"--image-dir {image_dir}: {len(names)} image(s) found ({', '.join(IMAGE_SUFFIXES)}); "
                             "at least 2 are needed")
        pairs = exhaustive_pairs(names) if seq is None else sequential_pairs(names, int(seq.group(1)))
        return PairList(pairs, spec)
    out = read_pairs_file(spec)
    for pair in out.pairs:
        for name in pair:
            if not (image_dir / name).is_file():
                raise PairsError(f"{out.source} line {out.lines[pair]}: {name!r} is not a file in --image-dir {image_dir}")
    return out


def write_pairs_file(path: str | os.PathLike, pairs: list[Pair]) -> None:
    """The pairs, one 'name0 name1' per line (for hloc, COLMAP's matchers or a later run), atomically."""
    from .files import atomic_write

    text = "".join(f"{a} {b}\n" for a, b in pairs)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
