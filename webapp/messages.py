"""What the page says when a job fails: the reason in plain words, the technical cause kept aside.

The library's and the app's refusals are sentences written for the CLI and the API (``InputError``
messages name FFmpeg, decoders, endpoints). ``plain`` turns the technical ones into words for a
visitor of the page and returns the original sentence as the detail the page keeps folded away
(``views.error_html``); a sentence that is already plain is returned as it is, without a detail.
"""

from __future__ import annotations

import re

# (pattern of the technical sentence, what the page says); first match wins.
PLAIN: tuple[tuple[re.Pattern, str], ...] = tuple((re.compile(p, re.S), text) for p, text in (
    (r"is not a video file FFmpeg can read", "This file is not a video we can read: it may be damaged."),
    (r"has a video stream but no decodable frame|without a picture size|no decodable frame",
     "This video has no picture we can read: it may be damaged or incomplete."),
    (r"is neither a photo nor a video", "This file is neither a photo nor a video we can read."),
    (r"is an audio-only file", "This file has sound but no picture: drop a video or a photo."),
    (r"is a file without a video stream", "This file has no picture: drop a video or a photo."),
    (r"is too large to decode safely", "This picture is too large to open safely."),
    (r"cannot identify image file|Invalid data found", "This file is not a photo or a video we can read: "
                                                       "it may be damaged."),
))


def plain(message: str) -> tuple[str, str | None]:
    """(what the page says, the technical sentence or None when the message is already plain)."""
    for pattern, text in PLAIN:
        if pattern.search(message):
            return text, message
    return message, None
