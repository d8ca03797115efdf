"""A stand-in for IPython's ``get_ipython()`` in the grading worker.

:func:`autograder.notebook.strip_magics` lets IPython's own input transformer turn magics and
shell escapes into calls such as ``get_ipython().run_line_magic('time', 'f(x)')``; this module
answers them without IPython: ``%time`` / ``%%time``, ``%timeit`` / ``%%timeit`` and
``%%capture`` run their code (once) in the notebook's namespace; shell escapes (``!pip install``)
and every other magic (``%matplotlib inline``) do nothing and print a note.
"""
from __future__ import annotations

import shlex

__all__ = ["Shell", "install"]

_RUNS = {"time", "timeit", "capture", "prun"}


class Shell:
    """The object ``get_ipython()`` returns: runs timing/capture magics, skips the rest."""

    def __init__(self, ns: dict):
        self._ns = ns

    def _run(self, code: str):
        try:
            expr = compile(code, "<magic>", "eval")
        except SyntaxError:
            exec(compile(code, "<magic>", "exec"), self._ns)
            return None
        return eval(expr, self._ns)

    @staticmethod
    def _note(what: str) -> None:
        print(f"[grader] skipped {what}: it does nothing while a submission is graded")

    def run_line_magic(self, name: str, line: str):
        if name in ("time", "prun"):
            return self._run(line)
        if name == "timeit":  # options first (-n 10 -r 3 -q -o ...), then the statement
            words, k = shlex.split(line, posix=False), 0
            while k < len(words) and words[k].startswith("-"):
                k += 2 if words[k] in ("-n", "-r", "-p") else 1
            self._run(line.split(None, k)[k] if k else line)
            return None
        self._note(f"%{name} {line}".rstrip())
        return None

    def run_cell_magic(self, name: str, line: str, cell: str):
        if name in _RUNS:
            self._run(cell)
            return None
        self._note(f"%%{name}")
        return None

    def system(self, cmd: str):
        self._note(f"!{cmd}")

    def getoutput(self, cmd: str, *args, **kwargs):
        self._note(f"!{cmd}")
        return []


def install(ns: dict) -> dict:
    """Give the namespace ``ns`` a ``get_ipython()``; returns ``ns``."""
    shell = Shell(ns)
    ns["get_ipython"] = lambda: shell
    return ns
