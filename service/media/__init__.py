"""The only code that imports yt_dlp: probe, download, progress and error mapping."""
