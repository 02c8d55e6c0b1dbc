"""Where strokes come from: each module turns one source into prototypes in the unit box, placed
as its family is (a polyline per stroke, in stroke order), for the stroke engine
(:mod:`glyphlab.data.strokes`) to write. :mod:`glyphlab.data.prototypes` gathers them by the
names a set lists in ``sources``.

Each module's ``glyphs(char, family, ...)`` gives a character's prototypes; the font sources (hershey,
fonts) build them from ``raw_strokes`` (a character as the font stores it) and ``family_mapping`` (the
scale and offset that place a whole character family in the box).

- :mod:`~glyphlab.data.sources.kanjivg`     KanjiVG's SVGs: parsing, lookups, variant forms
- :mod:`~glyphlab.data.sources.hershey`     the single-stroke Hershey fonts (Latin, digits, Greek)
- :mod:`~glyphlab.data.sources.fonts`       OFL font outlines thinned to centre-line strokes
- :mod:`~glyphlab.data.sources.allographs`  the project's own table of common allographs
"""
