"""Renderers: generated visual codes + the reference -> video frames (warp.py: the training-free warp renderer)."""
