"""Every graded task id is a registered pytest marker, and library tests carry them."""
import ast
import configparser
import inspect
import pathlib

from cases import task_forbids, tasks_of

ROOT = pathlib.Path(__file__).resolve().parents[1]


def registered_markers() -> set:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = [ln.strip() for ln in cfg["tool:pytest"]["markers"].splitlines() if ln.strip()]
    return {ln.split(":", 1)[0].strip() for ln in lines}


def test_every_task_id_is_a_registered_marker():
    tasks = set(task_forbids())
    assert len(tasks) >= 40  # hw0..hw6
    markers = {m for m in registered_markers() if m.startswith("hw")}
    assert markers == tasks, f"register in setup.cfg: {sorted(tasks - markers)}; stale: {sorted(markers - tasks)}"


def test_tasks_of_matches_calls_by_name():
    forbids = {"hw2.sam_step": ["flatlab.train.reference.minibatch_epoch"], "hw1.x": ["flatlab.sharpness.hvp"]}
    assert tasks_of("minibatch_epoch(model, X)", forbids) == ["hw2.sam_step"]
    assert tasks_of("R.minibatch_epoch (m)", forbids) == []  # not a call
    assert tasks_of("my_minibatch_epoch(m); hvp(m)", forbids) == ["hw1.x"]


def test_every_task_with_a_reference_has_library_tests():
    """Each task whose forbid list names a library function has a library test calling it."""
    forbids = task_forbids()
    covered = set()
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        if path.name in {"test_course_grading.py", "test_notebooks.py", "test_guides.py"}:
            continue
        src = path.read_text()
        for node in ast.parse(src).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                covered.update(tasks_of(ast.get_source_segment(src, node), forbids))
    missing = sorted(t for t, names in forbids.items() if names and t not in covered)
    assert not missing, f"tasks whose reference no library test calls: {missing}"


def test_collected_items_carry_their_task_markers(request):
    """In this session, the marker set of each library test is exactly tasks_of(its source)."""
    forbids = task_forbids()
    checked = 0
    for item in request.session.items:
        path = pathlib.Path(str(item.fspath))
        if path.parent != ROOT / "tests" or not hasattr(item, "function") or path.name in {
                "test_course_grading.py", "test_notebooks.py", "test_guides.py"}:
            continue
        marks = {m.name for m in item.iter_markers() if m.name.startswith("hw")}
        assert marks == set(tasks_of(inspect.getsource(item.function), forbids)), item.nodeid
        checked += 1
    assert checked >= 1
