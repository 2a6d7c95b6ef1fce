"""Video and image I/O through PyAV (the only place ``av`` is imported).

Readers yield ``Frame`` (H x W x 3 uint8 RGB, source pts/time_base); writers keep every pts, carry the
audio over (``remux``: copied, or encoded again where the container cannot hold it) and publish the output
under its final name only when complete.
"""

from streamfill.io.decode import StreamInfo, VideoInfo, VideoReader
from streamfill.io.encode import (
    VP9_SUFFIXES,
    PngSequenceWriter,
    VideoWriter,
    check_image_output,
    check_output_path,
    check_video_suffix,
    is_sequence_path,
    open_output,
    staged,
    write_image,
)
from streamfill.io.images import IMAGE_SUFFIXES, is_image_file, picture_format, read_image
from streamfill.io.remux import check_source_carry
from streamfill.io.sequences import ImageSequenceReader, open_video, read_grey_sequence

__all__ = [
    "IMAGE_SUFFIXES", "VP9_SUFFIXES", "ImageSequenceReader", "PngSequenceWriter", "StreamInfo", "VideoInfo",
    "VideoReader", "VideoWriter", "check_image_output", "check_output_path", "check_source_carry", "check_video_suffix",
    "is_image_file", "is_sequence_path", "open_output", "open_video", "picture_format", "read_grey_sequence",
    "read_image", "staged", "write_image",
]
