"""Pure domain rules: job states, option presets, URL policy. Imports nothing of the project."""
