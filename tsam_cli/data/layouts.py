"""Dataset layouts: which entries of a dataset root are clips.  Shared by ``tsam eval`` and ``tsam train``.

Layouts (``discover``):
    * ``davis``: ``ROOT/JPEGImages/480p/<sequence>/*.jpg`` (with ``ROOT/Annotations/480p/<sequence>``
      recorded when present); ``ROOT`` may also be the ``480p`` folder itself.
    * ``youtube-vos`` (FVI): ``ROOT/{train,valid,test}/JPEGImages/<video id>/*.jpg`` (the first of
      those splits that holds clips, in that order) or ``ROOT/JPEGImages/<video id>/*.jpg``.
    * ``folder``: every folder of frames and every video file (suffix in ``VIDEO_SUFFIXES``)
      directly inside ``ROOT``.

Common rules: a *frame folder* is a folder in which :func:`tsam_cli.media.list_images` finds at
least one image (suffixes from ``tsam_cli.media.IMAGE_SUFFIXES``, hidden files ignored); hidden
entries (name starting with ``.``) are never clips; clips come in natural order of their folder
or file name (``clip2`` before ``clip10``, case-insensitive).  A clip's ``name`` is the folder
name or the video file's stem, so in the ``folder`` layout ``a/`` and ``a.mp4`` share a name:
callers that key on names check for that themselves.

Nothing here reads frames or decodes videos; readability is the caller's business.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tsam_cli.errors import DatasetError, UsageError
from tsam_cli.media import list_images, natural_key

DATASETS = ("davis", "youtube-vos", "folder")
#: Video containers recognised in ``folder`` datasets and in result folders (lower case).
#: in order of preference when a results folder holds one clip in several containers
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
YOUTUBE_VOS_SPLITS = ("train", "valid", "test")


@dataclass
class Clip:
    """One clip of a dataset: a frame folder or a video file."""

    name: str
    source: Path
    annotations: Path | None = None  # DAVIS Annotations/480p/<seq> when present

    @property
    def is_video(self) -> bool:
        return self.source.is_file()


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _natural(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: natural_key(p.name))


def is_frame_dir(path: Path) -> bool:
    """True for a folder holding at least one (non-hidden) image."""
    return path.is_dir() and bool(list_images(path))


def is_video_file(path: Path) -> bool:
    """True for a non-hidden file whose suffix is in ``VIDEO_SUFFIXES`` (any case)."""
    return path.is_file() and not _hidden(path) and path.suffix.lower() in VIDEO_SUFFIXES


def frame_dirs(folder: Path) -> list[Path]:
    """The frame folders directly inside ``folder`` (hidden ones skipped), in natural order."""
    if not folder.is_dir():
        return []
    return _natural(p for p in folder.iterdir() if not _hidden(p) and is_frame_dir(p))


def _first_with_clips(candidates: Iterable[Path]) -> tuple[Path, list[Path]] | None:
    for base in candidates:
        dirs = frame_dirs(base)
        if dirs:
            return base, dirs
    return None


def davis_clips(root: Path) -> list[Clip]:
    """``ROOT/JPEGImages/480p/<sequence>`` (or ``ROOT/<sequence>`` when ROOT is the 480p folder)."""
    found = _first_with_clips([root / "JPEGImages" / "480p", root])
    if found is None:
        raise DatasetError(f"{root} does not look like DAVIS: expected {root}/JPEGImages/480p/<sequence>/*.jpg")
    ann_root = root / "Annotations" / "480p"
    clips = []
    for d in found[1]:
        ann = ann_root / d.name
        clips.append(Clip(d.name, d, ann if ann.is_dir() else None))
    return clips


def youtube_vos_clips(root: Path) -> list[Clip]:
    """``ROOT/<split>/JPEGImages/<video id>`` for the first split with clips, else ``ROOT/JPEGImages/<video id>``."""
    candidates = [root / split / "JPEGImages" for split in YOUTUBE_VOS_SPLITS] + [root / "JPEGImages"]
    found = _first_with_clips(candidates)
    if found is None:
        raise DatasetError(
            f"{root} does not look like YouTube-VOS/FVI: expected {root}/train/JPEGImages/<video id>/*.jpg "
            f"or {root}/JPEGImages/<video id>/*.jpg"
        )
    return [Clip(d.name, d) for d in found[1]]


def folder_clips(root: Path) -> list[Clip]:
    """Frame folders and video files directly inside ``root``; a video's name is its stem."""
    clips = []
    for p in _natural(root.iterdir()):
        if is_video_file(p):
            clips.append(Clip(p.stem, p))
        elif not _hidden(p) and is_frame_dir(p):
            clips.append(Clip(p.name, p))
    if not clips:
        raise DatasetError(
            f"no clips in {root}: no videos found, expected {root}/<video>.mp4 (or .mov, .mkv, ...) "
            f"or {root}/<video>/*.png|*.jpg frame folders"
        )
    return clips


_LAYOUTS = {"davis": davis_clips, "youtube-vos": youtube_vos_clips, "folder": folder_clips}


def check_root(dataset: str, root: str | Path) -> Path:
    """``root`` as a Path after checking the dataset name and that the folder exists."""
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}: use one of {', '.join(DATASETS)}")
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(
            f"dataset root {root} does not exist: pass the folder that holds the {dataset} data with --root"
        )
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} is not a folder: pass the dataset folder with --root")
    return root


def discover(dataset: str, root: str | Path, strict: bool = False) -> list[Clip]:
    """All clips of a dataset in natural order (see the module docstring for the layouts).

    Raises ``UsageError`` for an unknown dataset name and ``DatasetError`` (one line, naming the
    expected layout) for a missing root or a root without a clip in the expected layout.
    ``strict`` (evaluation: every clip must be scored): an entry where a clip belongs that is
    not one (a folder without frames, a FIFO named like a video) is a DatasetError naming it,
    not silently left out.
    """
    root = check_root(dataset, root)
    clips = _LAYOUTS[dataset](root)
    if strict:
        _refuse_unusable(Path(clips[0].source).parent, {c.source for c in clips})
    return clips


def _refuse_unusable(folder: Path, used: set[Path]) -> None:
    """DatasetError for the first non-hidden entry of ``folder`` that looks like a clip but is
    not one: a folder without frames, or a video name that is not a regular file."""
    for p in _natural(folder.iterdir()):
        if _hidden(p) or p in used:
            continue
        if p.is_dir() and not p.is_symlink():
            raise DatasetError(f"{p} holds no frames: add its frames, or move it out of the dataset")
        if p.suffix.lower() in VIDEO_SUFFIXES and not p.is_file():
            raise DatasetError(f"{p} is not a regular file (a FIFO, device or broken link): replace it with the "
                               "video file, or move it out of the dataset")


__all__ = [
    "DATASETS", "VIDEO_SUFFIXES", "YOUTUBE_VOS_SPLITS", "Clip", "check_root", "davis_clips", "discover",
    "folder_clips", "frame_dirs", "is_frame_dir", "is_video_file", "youtube_vos_clips",
]
