"""Inpainting engines behind the ``Inpainter`` protocol (streamfill/types.py)."""
