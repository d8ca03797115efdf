"""``python -m autograder COMMAND``: one argparse entry point for every command.

A command module either exposes ``add_arguments(parser)`` + ``run(args) -> int`` (its options
join this parser, so ``--help`` shows them with their defaults) or a ``main(argv) -> int``
that parses its own options. Exit status: what the command returns; 2 for usage errors.
"""
from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["COMMANDS", "EXPORTS", "main"]

# name -> (module, one-line help); a module is imported only when its command runs
COMMANDS = {
    "build": ("autograder.build", "solutions/*.py -> assignments/*.ipynb + grading bundles (--check)"),
    "grade": ("autograder.grade", "grade a submission or a folder of submissions in the sandbox"),
    "gradebook": ("autograder.gradebook", "rebuild grades.csv, grades_canvas.csv of a grading folder"),
    "mistakes": ("autograder.mistakes", "grade every registered mistake: caught by the tests and the self-checks?"),
    "release": ("autograder.release", "the student repository: flatlab, assignments, docs; no solutions"),
    "report": ("autograder.class_report", "class analytics from a results folder"),
    "similarity": ("autograder.similarity", "pairs of submissions that look alike"),
}
EXPORTS = {
    "gradescope": ("autograder.gradescope", "a Gradescope autograder zip running this grader"),
    "nbgrader": ("autograder.export_nbgrader", "an nbgrader course folder"),
    "otter": ("autograder.export_otter", "otter-grader master notebooks"),
}
_FMT = argparse.ArgumentDefaultsHelpFormatter


def _load(module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        return None


def _parser(chosen: tuple[str, ...] = ()) -> tuple[argparse.ArgumentParser, dict]:
    """The parser; only the chosen command's module is imported (``--help`` stays fast).
    Returns (parser, {command path: module}) for commands that parse their own options."""
    p = argparse.ArgumentParser(prog="python -m autograder", formatter_class=_FMT,
                                description="The flatlab grader: build, grade, release, export.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    own = {}

    def add(parent, name, module, text, path):
        if path != chosen:
            parent.add_parser(name, help=text, description=text, formatter_class=_FMT)
            return
        mod = _load(module)
        if mod is not None and hasattr(mod, "add_arguments") and hasattr(mod, "run"):
            s = parent.add_parser(name, help=text, description=text, formatter_class=_FMT)
            mod.add_arguments(s)
            s.set_defaults(_run=mod.run)
        else:  # parses its own argv (or is not available yet)
            parent.add_parser(name, help=text, add_help=False)
            own[path] = mod

    for name, (module, text) in COMMANDS.items():
        add(sub, name, module, text, (name,))
    ex = sub.add_parser("export", help="export the course to another grading platform", formatter_class=_FMT)
    exsub = ex.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, (module, text) in EXPORTS.items():
        add(exsub, name, module, text, ("export", name))
    return p, own


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = tuple(argv[:2]) if argv[:1] == ["export"] else tuple(argv[:1])
    p, own = _parser(chosen)
    if chosen in own:  # forward the rest of the command line to the module's own parser
        mod = own[chosen]
        if mod is None:
            table = EXPORTS if chosen[0] == "export" else COMMANDS
            print(f"{' '.join(chosen)}: {table[chosen[-1]][0]} is not available yet", file=sys.stderr)
            return 2
        return int(mod.main(argv[len(chosen):]) or 0)
    a = p.parse_args(argv)  # exits 2 on a usage error, 0 after --help
    return int(a._run(a) or 0)


if __name__ == "__main__":
    sys.exit(main())
