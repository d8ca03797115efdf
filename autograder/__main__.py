"""``python -m autograder build | grade | release | export {gradescope,nbgrader,otter}``."""
from __future__ import annotations

import importlib
import sys

__all__ = ["main"]

_USAGE = """usage: python -m autograder COMMAND [options]

commands:
  build                 solutions/*.ipynb -> assignments/*.ipynb + grading bundles (--check: verify)
  grade                 grade a submission or a folder of submissions in the sandbox
  release               the student repository: flatlab + assignments + student docs, no solutions
  export gradescope     build a Gradescope autograder zip running this grader
  export nbgrader       nbgrader course folder (autograder/export_nbgrader.py)
  export otter          otter-grader master notebooks (autograder/export_otter.py)

`python -m autograder COMMAND --help` shows the options of a command."""

_EXPORTS = {"gradescope": "autograder.gradescope", "nbgrader": "autograder.export_nbgrader",
            "otter": "autograder.export_otter"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "build":
        from .build import main as run
    elif cmd == "grade":
        from .grade import main as run
    elif cmd == "release":
        from .release import main as run
    elif cmd == "export":
        if not rest or rest[0] not in _EXPORTS:
            print(f"usage: python -m autograder export {{{','.join(_EXPORTS)}}} [options]", file=sys.stderr)
            return 2
        try:
            mod = importlib.import_module(_EXPORTS[rest[0]])
        except ModuleNotFoundError as e:
            if e.name != _EXPORTS[rest[0]]:
                raise
            print(f"export {rest[0]}: {_EXPORTS[rest[0]]} is not available yet", file=sys.stderr)
            return 2
        run, rest = mod.main, rest[1:]
    else:
        print(f"unknown command {cmd!r}\n\n{_USAGE}", file=sys.stderr)
        return 2
    return int(run(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
