"""``python -m glyphlab ...``: the ``glyphlab`` command (see glyphlab.cli)."""
from glyphlab.cli import entry

if __name__ == "__main__":
    entry()
