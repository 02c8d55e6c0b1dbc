"""glyphlab's benchmark suite (`make bench`): where the time of a run goes, as rates and ratios on this
machine. Never imported by glyphlab itself. One module per section (see registry.py); `python -m
benchmarks --help` for the options."""
