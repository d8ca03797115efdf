"""What the nbgrader and otter exports share: reading the sources, writing files, and the
small in-kernel runtime that the generated autograder cells import.

In-kernel graders (nbgrader, otter) run tests inside the student's own kernel, so a
FORMAT hidden test ``test_x(student, rng)`` is run here with a *shim* for ``student``:
``student.fn(*args)`` calls the notebook's global ``fn`` on copies of the arguments
(flatlab models rebuilt from config and weights, tensors cloned) and returns plain data
(tensors become numpy arrays, models ``{"config", "params", "reference"}`` dicts of arrays),
as the secure grader's sandbox and ``autograder.codec`` do. Nothing here is a
security boundary: the student's code shares the process with the tests.

Runtime entry points used by the generated cells:
- ``run_task_tests(env, task=..., source=..., points=..., seed=..., shares=..., forbid=...) -> float``
  (nbgrader: one autograder cell per task whose value is the points earned)
- ``run_one_test(env, task=..., test=..., source=..., seed=..., forbid=...)``
  (otter: one exception-based test case per hidden test; raises on failure)
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import nbformat

__all__ = [
    "REPO", "SEED_VARIABLE", "source_notebooks", "load_source", "empty_like", "clean_copy",
    "write_text_atomic", "write_notebook_atomic", "build_wheel", "requirements",
    "string_literal", "todo_line", "stub_lines", "indent_block",
    "test_rng", "Student", "run_task_tests", "run_one_test",
]

REPO = Path(__file__).resolve().parents[1]
# a notebook global or environment variable that overrides the grading seed baked into an export
SEED_VARIABLE = "FLATLAB_GRADING_SEED"


# --------------------------------------------------------------------------- export side
def empty_like(src):
    """A new notebook carrying ``src``'s metadata and a plain ``python3`` kernelspec."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = copy.deepcopy(src.metadata)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def clean_copy(cell):
    """A deep copy of ``cell`` with outputs and execution count cleared (code cells)."""
    new = copy.deepcopy(cell)
    if cell.cell_type == "code":
        new.outputs, new.execution_count = [], None
    return new


def load_source(path: str | Path):
    """A FORMAT source ``hwN.py`` as a notebook and what both exports need from it.

    Returns (notebook, assignment, tasks by id, manual questions by id, hidden code): the
    hidden code is every hidden-test cell joined, since they share one namespace, as in
    the secure grader.
    """
    from .notebook import parse_source, read_source

    src = read_source(path)
    asg = parse_source(copy.deepcopy(src))
    hidden = "\n\n".join(code.rstrip() for _, code in asg.hidden_sources) + "\n"
    return src, asg, {t.id: t for t in asg.tasks}, {q.id: q for q in asg.manual}, hidden


def source_notebooks(solutions: str | Path, names: list[str] | None) -> list[Path]:
    """The sources ``solutions/<name>.py`` to export (all ``*.py`` if ``names`` is None)."""
    root = Path(solutions)
    if not root.is_dir():
        raise ValueError(f"solutions: expected a directory of sources hwN.py, got {str(root)!r}")
    if names:
        paths = [root / f"{n}.py" for n in names]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ValueError(f"assignments: no source {', '.join(missing)}")
        return paths
    paths = sorted(root.glob("*.py"))
    if not paths:
        raise ValueError(f"solutions: no *.py in {str(root)!r}")
    return paths


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_notebook_atomic(path: Path, nb) -> None:
    """Validate and write a notebook deterministically (sorted keys, fixed cell ids)."""
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:03d}"
    nbformat.validate(nb)
    write_text_atomic(path, nbformat.writes(nb) + "\n")


def string_literal(text: str) -> str:
    """A readable Python literal for ``text``: a raw triple-quoted string when that is exact."""
    if "'''" not in text and not text.endswith("\\") and "\r" not in text:
        return "r'''" + text + "'''"
    return repr(text)


# what the grader needs beyond flatlab's own install_requires
_GRADER_REQUIRES = ("nbformat>=5.9", "ipython>=8")  # ipython: magics in submitted cells


def _tested(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name).split("+")[0]
    except PackageNotFoundError:
        return None


def requirements(wheel: Path) -> tuple[str, list[str]]:
    """(torch requirement, other requirement lines) for setup.sh: each ``Requires-Dist`` of the
    wheel (flatlab's minimum) up to the version installed here, so they resolve on every Python
    that has some release in the range (numpy 2.4 has no cp310 wheel; 2.2 has)."""
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    lines = [ln.split(":", 1)[1].strip() for ln in meta.splitlines() if ln.startswith("Requires-Dist:")]
    lines = [ln for ln in lines if "extra ==" not in ln] + list(_GRADER_REQUIRES)
    torch, out, seen = "torch", [], set()
    for req in lines:
        spec, _, marker = (x.strip() for x in req.partition(";"))
        name = re.match(r"[A-Za-z0-9_.-]+", spec).group(0).lower()
        top = _tested(name)
        if top:
            spec += ("," if spec != name else "") + f"<={top}"
        spec += f"; {marker}" if marker else ""
        if name == "torch":
            torch = spec
        elif name not in seen:
            out.append(spec)
        seen.add(name)
    return torch, out


def build_wheel(out_dir: Path) -> Path:
    """Build the flatlab wheel (flatlab + autograder) from a clean copy of this source tree."""
    repo = Path(__file__).resolve().parent.parent
    if not (repo / "setup.cfg").is_file():
        raise ValueError(f"{repo} is not a flatlab source tree (no setup.cfg): export from a checkout")
    with tempfile.TemporaryDirectory(prefix="flatlab-wheel-") as tmp:
        src = Path(tmp) / "src"
        for name in ("setup.cfg", "pyproject.toml", "README.md"):
            if (repo / name).exists():
                (src / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(repo / name, src / name)
        for pkg in ("flatlab", "autograder"):
            for p in sorted((repo / pkg).rglob("*")):
                if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".md"):
                    (src / p.relative_to(repo)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, src / p.relative_to(repo))
        for p in src.rglob("*"):
            os.utime(p, (315532800, 315532800))
        try:  # setuptools >= 70.1 builds wheels itself: no isolated build env to download
            import setuptools
            isolate = tuple(int(x) for x in setuptools.__version__.split(".")[:2]) < (70, 1)
        except ImportError:
            isolate = True
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(Path(tmp) / "dist"),
               str(src)] + ([] if isolate else ["--no-build-isolation"])
        env = dict(os.environ, SOURCE_DATE_EPOCH="315532800", PYTHONHASHSEED="0")
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)
        wheels = sorted((Path(tmp) / "dist").glob("flatlab-*.whl"))
        if p.returncode != 0 or len(wheels) != 1:
            raise ValueError(f"building the flatlab wheel failed:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
        out_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheels[0], out_dir / wheels[0].name))


# --------------------------------------------------------------------------- runtime side
def test_rng(seed: int, task: str, test: str):
    """``numpy.random.Generator`` of one hidden test, as the secure grader seeds it
    (``autograder.grade``: ``default_rng([seed, sha256("task.test")[:8] big-endian])``)."""
    import numpy as np

    h = int.from_bytes(hashlib.sha256(f"{task}.{test}".encode()).digest()[:8], "big")
    return np.random.default_rng([int(seed), h])


def _send(x):
    """A copy of an argument as the sandbox would receive it (models rebuilt, tensors cloned)."""
    import torch
    from flatlab.models import get_params, model_from_config

    if isinstance(x, torch.nn.Module) and hasattr(x, "config"):
        ref = getattr(x, "reference", None)
        return model_from_config(x.config, get_params(x), X_ref=None if ref is None else ref.clone())
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, (list, tuple)):
        return type(x)(_send(v) for v in x)
    if isinstance(x, dict):
        return {k: _send(v) for k, v in x.items()}
    return copy.deepcopy(x)


def _plain(x):
    """Plain data as the secure grader returns it; anything else fails the test."""
    import numpy as np
    import torch

    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy().copy()
    if isinstance(x, torch.nn.Module) and hasattr(x, "config"):  # as autograder.codec.decode
        ref = getattr(x, "reference", None)
        return {"config": x.config.to_dict(),
                "params": {k: v.detach().cpu().numpy().copy() for k, v in x.named_parameters()},
                "reference": None if ref is None else ref.detach().cpu().numpy().copy()}
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise TypeError(f"returned an object of type {type(x).__name__}; expected a number/array")


class _Forbidden(Exception):
    pass


@contextlib.contextmanager
def _forbid(names, env):
    """Replace each dotted name (and notebook globals bound to the same object) by a raiser.

    Best effort only: a student can hold a reference the patch does not see.
    """
    import importlib

    undo = []
    for dotted in names:
        mod_name, attr = dotted.rsplit(".", 1)
        try:
            owner = importlib.import_module(mod_name)
        except ImportError:
            continue
        real = getattr(owner, attr, None)
        if real is None:
            continue

        def raiser(*a, _n=dotted, **k):
            raise _Forbidden(f"calls {_n}, which this task must not use")

        undo.append((owner, attr, real))
        setattr(owner, attr, raiser)
        for key, val in list(env.items()):
            if val is real:
                undo.append((env, key, real))
                env[key] = raiser
    try:
        yield
    finally:
        for owner, attr, real in reversed(undo):
            if isinstance(owner, dict):
                owner[attr] = real
            else:
                setattr(owner, attr, real)


class Student:
    """``student.fn(*args)`` calls the notebook global ``fn`` on copies of the arguments."""

    def __init__(self, env: dict, forbid=()):
        self._env, self._forbid = env, tuple(forbid)

    def call(self, name, *args, return_args=False, **kwargs):
        fn = self._env.get(name)
        if not callable(fn):
            raise AssertionError(f"the notebook defines no function {name!r}")
        args, kwargs = _send(args), _send(kwargs)
        with _forbid(self._forbid, self._env):
            out = _plain(fn(*args, **kwargs))
        if return_args:
            return out, tuple(_plain(a) for a in args)
        return out

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *a, **k: self.call(name, *a, **k)


def _seed(env: dict, seed: int) -> int:
    val = env.get(SEED_VARIABLE, os.environ.get(SEED_VARIABLE, seed))
    return int(val)


def _load_tests(source: str, task: str) -> dict:
    """Execute one task's hidden-test source in a namespace like the secure grader's."""
    import numpy as np
    import torch

    import flatlab
    from autograder.grade import assert_close

    ns = {"__name__": "hidden_tests", "np": np, "numpy": np, "torch": torch,
          "flatlab": flatlab, "assert_close": assert_close}
    exec(compile(source, f"<hidden tests {task}>", "exec"), ns)  # trusted instructor code
    return ns


def _run(fn, env, seed, task, name, forbid) -> tuple[bool, str]:
    """Run one test quietly (stderr and warnings captured: nbgrader zeroes a cell on stderr)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(Student(env, forbid), test_rng(seed, task, name))
        return True, ""
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a crash fails this test only
        return False, f"{type(exc).__name__}: {str(exc)[:300]}"


def run_task_tests(env: dict, *, task: str, source: str, points: float, seed: int,
                   shares: dict, forbid=()) -> float:
    """Run one task's hidden tests; print feedback; return the points earned.

    ``source`` is the notebook's whole hidden-test code (all hidden cells, in order, run in
    one namespace as the secure grader does: a cell may use helpers of another); ``shares``
    maps the task's test names, in order, to their points. Failure feedback is the test's
    docstring and error message, never its code.
    """
    ns = _load_tests(source, task)
    seed = _seed(env, seed)
    earned, passed = 0.0, 0
    for name, share in shares.items():
        fn = ns[name]
        ok, err = _run(fn, env, seed, task, name, forbid)
        if ok:
            earned, passed = earned + share, passed + 1
            print(f"{task} {name}: passed")
        else:
            doc = (fn.__doc__ or name).strip().splitlines()[0]
            print(f"{task} {name}: FAILED ({share:g} points): {doc}\n    {err}")
    return float(points) if passed == len(shares) else round(earned, 9)


def run_one_test(env: dict, *, task: str, test: str, source: str, seed: int, forbid=()) -> None:
    """Run one hidden test (``source``: all hidden cells); if it fails, raise
    ``AssertionError`` with its docstring and error message."""
    ns = _load_tests(source, task)
    fn = ns[test]
    ok, err = _run(fn, env, _seed(env, seed), task, test, forbid)
    if not ok:
        doc = (fn.__doc__ or test).strip().splitlines()[0]
        raise AssertionError(f"{task}: {doc}\n    {err}")



def todo_line(task_id: str, summary: str) -> str:
    """The FORMAT stub's comment line for a task."""
    return f"# TODO: Task {task_id}: {summary}"


def stub_lines(task_id: str, summary: str) -> list[str]:
    """The FORMAT stub that replaces a solution region (without indentation)."""
    return [f"# TODO: Task {task_id}", f"raise NotImplementedError({f'Task {task_id}: {summary}'!r})"]


def indent_block(source: str, prefix: str) -> str | None:
    """Indent every line of ``source`` except continuation lines of multi-line strings.

    Returns None when ``source`` is not plain Python (e.g. IPython magics).
    """
    import ast
    import tokenize

    try:
        ast.parse(source)
        toks = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (SyntaxError, tokenize.TokenError, IndentationError):
        return None
    inside = set()
    for tok in toks:
        if tok.end[0] > tok.start[0] and tok.type not in (tokenize.NEWLINE, tokenize.NL):
            inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
    lines = source.split("\n")
    out = [ln if (i + 1) in inside or not ln.strip() else prefix + ln for i, ln in enumerate(lines)]
    return "\n".join(out)
