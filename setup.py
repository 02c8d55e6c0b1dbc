"""Package discovery only; everything else is in pyproject.toml.

conf/ ships inside the package as glyphlab.conf (pyproject maps it; the glyphlab command reads it
through Hydra's pkg://glyphlab.conf), one copy in git. setuptools' find cannot place a folder that
sits outside src/ into glyphlab, and pyproject.toml takes either find or a list: hence this line.
"""
from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages("src", include=["glyphlab*", "hydra_plugins*"], exclude=["*.__pycache__"]),
                "glyphlab.conf"])
