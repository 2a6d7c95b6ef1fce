"""Completion of frames: crop planning, crop-and-stitch, and the streaming loop."""
