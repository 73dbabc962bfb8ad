"""The Litestar REST API; the only code that imports litestar. Controllers stay thin."""
