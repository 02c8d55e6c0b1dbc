"""glyphlab's Ray launcher (``hydra/launcher=ray``): see ray_launcher.py."""
