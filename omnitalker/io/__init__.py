"""Media in and out, the only place that opens a media container: videos (video.py), photos (image.py), audio
files (audio.py), H.264 + AAC mp4 export (export.py), frames made on demand (frames.py), watermarks (watermark.py)."""

from omnitalker.io.audio import load_audio, save_audio
from omnitalker.io.export import DEFAULT_FPS, DEFAULT_SAMPLE_RATE, export_to_video
from omnitalker.io.image import load_image
from omnitalker.io.video import VideoData, read_video

__all__ = ["DEFAULT_FPS", "DEFAULT_SAMPLE_RATE", "VideoData", "export_to_video", "load_audio", "load_image",
           "read_video", "save_audio"]
