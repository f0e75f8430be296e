"""Upper estimates of what a job's files take on disk, reserved in the store before they are written."""

from __future__ import annotations


# What a result may take on disk, reserved before it is written. Videos are H.264 yuv420p at CRF 23,
# preset superfast (accurate) / ultrafast (realtime). Measured on this machine: camera clips take
# 0.06-0.19 bits per pixel (the shared clips at 640x360-768x432, overlay, mask and side-by-side)
# and a 720p clip 0.07-0.08; tiny frames cost ~380 bytes each whatever they show (slice headers,
# the container's index: 1.0 bit per pixel at 64x48). Pure noise, the worst anyone can send,
# reaches 2.4-3.3 bits per pixel (4.6 at 64x48). The estimate is 0.5 bits per pixel, 2.6x the most
# a camera clip needed, plus 400 bytes per frame and the audio at up to 512 kbit/s (AAC is
# re-encoded at ~128-192; copied tracks are rarely above 320). A result that outgrows it anyway
# (noise) is measured while it is written (``_DiskWatch``) and stopped if the budget cannot hold it.
VIDEO_BITS_PER_PIXEL = 0.5
VIDEO_BYTES_PER_FRAME = 400
AUDIO_BITS_PER_SECOND = 512_000
# A PNG at compress level 1 is at most its raw RGB bytes plus a little (row filters, chunks).
PNG_OVERHEAD_BYTES = 64 * 1024


def estimate_video_bytes(pixels_per_frame: float, frames: int, seconds: float, audio: bool) -> int:
    """Upper estimate of an encoded result's size (see the measurements above)."""
    video_bytes = frames * (pixels_per_frame * VIDEO_BITS_PER_PIXEL / 8 + VIDEO_BYTES_PER_FRAME)
    return int(video_bytes + (seconds * AUDIO_BITS_PER_SECOND / 8 if audio else 0))


def estimate_photo_bytes(width: int, height: int, channels: int = 3) -> int:
    return width * height * channels + PNG_OVERHEAD_BYTES


# Labels: the .zip (8-bit PNG per frame) and the COCO .json together. Both grow with the length of the
# class boundaries, i.e. with the frame's width + height, not its area. Measured per frame and pixel of
# width + height (default model, zip + json): classroom.gif 480x270, a dense indoor scene, 6.4 + 14.0
# bytes, the most seen; the person clip 768x432 3.6 + 5.3, and upscaled to 1280x720 4.3 + 5.0;
# street traffic 768x432 2.2 + 0.6. The estimate is 48 bytes per pixel of width + height, 2.3x the
# most measured, plus 2 KiB per frame (zip entry and PNG headers, one COCO annotation per class
# present). A photo reserves the most any class map can take: every pixel its own run (~2 bytes a
# pixel in the .json, 1 in the PNG).
LABELS_BYTES_PER_SIDE_PIXEL = 48
LABELS_BYTES_PER_FRAME = 2048


def estimate_labels_bytes(width: int, height: int, frames: int | None = None) -> int:
    """Upper estimate of a result's label files (.zip and .json); ``frames`` None: a photo."""
    if frames is None:
        return 3 * width * height + 2 * PNG_OVERHEAD_BYTES
    return frames * (LABELS_BYTES_PER_SIDE_PIXEL * (width + height) + LABELS_BYTES_PER_FRAME)
