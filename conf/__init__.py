# Installed, this folder is the package glyphlab.conf (pyproject.toml maps it): Hydra's
# pkg://glyphlab.conf config source, which the `glyphlab` command reads outside a checkout,
# requires an __init__.py.
