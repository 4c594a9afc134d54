"""The limits the media pipeline enforces, defined once for it, the app and the pages.

Plain numbers, cheap to import: a web process reads them without loading the face engine or
ffmpeg, and the player reads them from the page, so code, messages and JavaScript agree.
"""

from __future__ import annotations

from typing import Final

MIB: Final = 1024 * 1024

# The largest photo accepted: a reference face, or one frame of an answer to a face check.
MAX_IMAGE_BYTES: Final = 10 * MIB
# Frames in one answer to a face check: the player sends this many over BURST_SPAN_MS.
MAX_BURST_FRAMES: Final = 10
BURST_SPAN_MS: Final = 2000
# The largest caption file (SRT or WebVTT); an hour of dense subtitles is about 100 KiB.
MAX_CAPTION_BYTES: Final = 2 * MIB
