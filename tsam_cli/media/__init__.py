"""The one media layer: probe and decode videos/frame folders, read masks, write outputs safely.

* :mod:`.reader`: :func:`probe` (metadata without decoding), :func:`iter_frames` (streamed RGB frames);
* :mod:`.masks`: every ``--mask``/``--box`` form as a stream of ``(H, W) bool`` masks (True = hole);
* :mod:`.writer`: :class:`VideoWriter`, video files and PNG folders, metadata and streams carried over;
* :mod:`.output`: the rules for ``-o`` (never an input, atomic replace, locking, file modes).
"""

from tsam_cli.media.output import VIDEO_OUT_SUFFIXES, OutputTarget, check_output_path
from tsam_cli.media.reader import (
    IMAGE_SUFFIXES,
    Frame,
    VideoInfo,
    check_complete,
    complete_frames,
    iter_frames,
    list_images,
    natural_key,
    probe,
)
from tsam_cli.media.writer import ContainerWriter, FrameFolderWriter, VideoWriter, create_video, open_writer

__all__ = [
    "IMAGE_SUFFIXES", "VIDEO_OUT_SUFFIXES", "ContainerWriter", "Frame", "FrameFolderWriter", "OutputTarget",
    "VideoInfo", "VideoWriter", "check_complete", "check_output_path", "complete_frames", "create_video", "iter_frames", "list_images", "natural_key",
    "open_writer", "probe",
]
