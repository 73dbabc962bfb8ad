"""The only code that imports yt_dlp: probe, download, progress and error mapping, and
the toolchain yt-dlp runs with (Deno and the EJS scripts, found from installed packages)."""
