"""The product's steps, one module per pipeline step; importing this registers them all."""

from handlers.steps import (  # noqa: F401
    add_interactivity,
    analyze_frames,
    analyze_video,
    extract_frames,
    finalize,
    generate_structure,
    prepare_video,
    transcribe,
    transcribe_chunk,
)
