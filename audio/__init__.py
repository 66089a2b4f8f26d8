"""Music: audio decoding (ffmpeg) and the 35 FineDance features per 1/30 s frame."""
