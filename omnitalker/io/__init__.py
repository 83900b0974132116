"""Reading and writing media: H.264 + AAC mp4 export and decoding (see video.py)."""

from omnitalker.io.video import DEFAULT_FPS, DEFAULT_SAMPLE_RATE, VideoData, export_to_video, read_video

__all__ = ["DEFAULT_FPS", "DEFAULT_SAMPLE_RATE", "VideoData", "export_to_video", "read_video"]
