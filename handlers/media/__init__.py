"""Media handling with ffmpeg: probing, normalising, and key-frame extraction."""
