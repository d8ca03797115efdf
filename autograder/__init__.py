"""flatlab autograder: build student notebooks from sources, grade submissions in a sandbox.

See FORMAT.md for the source format; run ``python -m autograder --help``.
"""
__all__: list[str] = []
