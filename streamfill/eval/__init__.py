"""Evaluation harnesses: synthetic occluders with known truth, measured against the real clip."""
