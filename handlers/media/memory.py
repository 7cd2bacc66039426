"""Keep a long run's memory flat: large buffers go straight back to the system when freed.

glibc raises its mmap threshold each time a large mmapped block is freed, so after the first
Whisper decode the next ones' audio and feature arrays (hundreds of MB for a five-minute
chunk) come from the thread's heap arena instead and stay there, fragmented: RSS grew with the
number of chunks decoded (565 to 636 MB over six chunks on two threads, peak 755 to 854).
A fixed threshold (which also turns the adjustment off) gives each such array its own
mapping, returned on free: RSS falls back to ~240 MB after every chunk and the peak stays at
711 MB however many chunks follow (measured with tiny.en, 300 s chunks, two decodes at once).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 1 << 20

_log = logging.getLogger(__name__)


@functools.cache
def bound_heap() -> bool:
    """Fix glibc's mmap threshold for this process (once); False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS: no mallopt, nothing to do
        return False
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    if not done:
        _log.warning("mallopt(M_MMAP_THRESHOLD) was refused; memory may grow with long runs")
    return done
