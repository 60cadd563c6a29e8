"""The real bootstrap, run as a replica in a snapshot directory: results, errors, result replica."""

from __future__ import annotations

import ast
import json
import marshal
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from kubeflow_jupyter.runcell import (
    PayloadError,
    RemoteError,
    ResultError,
    ResultNotice,
    build_cell_payload,
    decode_frames,
    filter_output,
    read_result,
)
from kubeflow_jupyter.runcell import bootstrap as bootstrap_module
from kubeflow_jupyter.runcell import frames as frames_module
from kubeflow_jupyter.runcell import runner as runner_module

TF_CONFIG_CELL = textwrap.dedent("""\
    import json, os
    config = json.loads(os.environ["TF_CONFIG"])
    print("running", config["task"])
    {"task": config["task"], "workers": len(config["cluster"]["worker"]), "nested": [1, 2.5, None, True, {"a": []}]}
    """)


def tf_config(task_type: str, index: int, cluster: dict[str, int]) -> str:
    """TF_CONFIG as the operator sets it (here, not imported from conftest: the module name
    ``conftest`` is another folder's when several test folders run in one session)."""
    hosts = {kind: [f"job-{kind}-{i}:2222" for i in range(count)] for kind, count in cluster.items()}
    return json.dumps({"cluster": hosts, "task": {"type": task_type, "index": index}, "environment": "cloud"})


def test_result_replica_is_chief_and_only_it_sends_the_value(run_replica):
    payload = build_cell_payload(TF_CONFIG_CELL)
    cluster = {"chief": 1, "worker": 2, "ps": 1}
    outcomes = {
        (kind, i): run_replica(payload, tf_config(kind, i, cluster))
        for kind, i in [("chief", 0), ("worker", 0), ("worker", 1), ("ps", 0)]
    }
    for (kind, i), replica in outcomes.items():
        assert replica.returncode == 0, replica.stderr
        assert list(filter_output(replica.lines)) == [f"running {{'type': '{kind}', 'index': {i}}}\n"]
    assert [key for key, r in outcomes.items() if decode_frames(r.lines) is not None] == [("chief", 0)]
    value = read_result(outcomes["chief", 0].lines, "chief-0")
    assert value == {"task": {"type": "chief", "index": 0}, "workers": 2, "nested": [1, 2.5, None, True, {"a": []}]}
    assert decode_frames(outcomes["chief", 0].lines)["replica"] == "chief-0"


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        ({"worker": 2, "ps": 1}, ("worker", 0)),
        ({"master": 1, "worker": 1}, ("master", 0)),
        ({"ps": 1, "evaluator": 1}, ("evaluator", 0)),
    ],
)
def test_result_replica_without_chief(run_replica, cluster, expected):
    payload = build_cell_payload("import os\nos.environ['TF_CONFIG'][:1]")
    senders = []
    for kind, count in cluster.items():
        for i in range(count):
            if decode_frames(run_replica(payload, tf_config(kind, i, cluster)).lines) is not None:
                senders.append((kind, i))
    assert senders == [expected]


def test_result_replica_named_by_the_caller_wins(run_replica):
    payload = build_cell_payload("1 + 1", result_replica="worker-1")
    cluster = {"chief": 1, "worker": 2}
    assert decode_frames(run_replica(payload, tf_config("chief", 0, cluster)).lines) is None
    assert read_result(run_replica(payload, tf_config("worker", 1, cluster)).lines) == 2


def test_single_replica_without_tf_config_sends_the_result(run_replica):
    replica = run_replica(build_cell_payload("x = 20\nx * 2 + 2"))
    assert replica.returncode == 0
    envelope = decode_frames(replica.lines)
    assert envelope["replica"] == "worker-0" and envelope["encoding"] == "json"
    assert read_result(replica.lines) == 42


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("x = 1", None),  # last statement not an expression
        ("x = 1\nx;", None),  # a trailing ; hides the value, like in IPython
        ("x = 1\nx  # comment", 1),
        ("[i * i for i in range(4)]", [0, 1, 4, 9]),
        ("'naïve ✓'", "naïve ✓"),
        ("def f():\n    return {'k': [1.5, -0.0]}\nf()", {"k": [1.5, -0.0]}),
        ("x = 1; x + 1", 2),  # the value shares its line: the runner parses the cell itself
        ("x = 1; x;", None),
        ("x = 2\n(x +\n 1)  # note\n# the end\n", 3),
        ("x = 2\r\ny = 'é'\r\n[x, y]", [2, "é"]),
        ("\x0cx = 5\ns = '\x0c'\n[x, s]", [5, "\x0c"]),  # a form feed is no newline to the parser
        ('"""doc"""\n__doc__', "doc"),
    ],
)
def test_last_expression_is_the_value(run_replica, code, expected):
    replica = run_replica(build_cell_payload(code))
    assert replica.returncode == 0, replica.stderr
    assert read_result(replica.lines) == expected


@pytest.mark.parametrize(
    ("code", "value_line"),
    [("x = 1", 0), ("x;", 0), ("x = 1\n\n(x +\n 1)", 3), ("x = 1; x", None), ("# only a comment", 0)],
)
def test_the_notebook_tells_the_runner_where_the_value_starts(code, value_line):
    assert build_cell_payload(code).run["value_line"] == value_line


def test_an_error_in_the_value_expression_points_at_its_line(run_replica):
    failed = run_replica(build_cell_payload("x = 0\nprint('ran')\n\n1 / x"))
    assert failed.returncode == 1 and list(filter_output(failed.lines)) == ["ran\n"]
    trace = decode_frames(failed.lines)["error"]["traceback"]
    assert '  File "<cell>", line 4, in <module>\n    1 / x\n' in trace and "ZeroDivisionError" in trace


def test_a_syntax_error_on_the_replica_runs_nothing(run_replica, tmp_path):
    payload = build_cell_payload("print('ran')\n1 + 1")
    target = payload.write_to(tmp_path / "snap")
    (target / "_kfj" / "code.py").write_text("print('ran')\n1 +")  # what an older Python might not parse
    failed = run_replica(payload, directory=target)
    assert failed.returncode == 1 and "ran" not in failed.stdout
    assert decode_frames(failed.lines)["error"]["type"] == "SyntaxError"


def test_cell_runs_in_a_fresh_main_module(run_replica):
    code = "import sys\n[__name__, sys.modules['__main__'].__dict__ is globals(), sys.argv, 'frames' in dir()]"
    assert read_result(run_replica(build_cell_payload(code)).lines) == ["__main__", True, ["<cell>"], False]


@pytest.mark.parametrize(
    ("code", "expected", "encoding"),
    [
        ("{1, 2, 3}", {1, 2, 3}, "pickle"),
        ("(1, 'a')", (1, "a"), "pickle"),
        ("{1: 'int key'}", {1: "int key"}, "pickle"),
        ("float('nan') != float('nan'), float('inf')", (True, float("inf")), "pickle"),
        ("import fractions\nfractions.Fraction(1, 3)", __import__("fractions").Fraction(1, 3), "pickle"),
    ],
)
def test_non_json_values_come_back_by_pickle_with_a_notice(run_replica, code, expected, encoding):
    replica = run_replica(build_cell_payload(code))
    envelope = decode_frames(replica.lines)
    assert envelope["encoding"] == encoding
    with pytest.warns(ResultNotice, match="by pickle"):
        value = read_result(replica.lines)
    assert value == expected and type(value) is type(expected)


def test_dataclass_from_a_shipped_helper_comes_back_by_pickle(run_replica, tmp_path, monkeypatch):
    notebook = tmp_path / "notebook"
    notebook.mkdir()
    (notebook / "shapes.py").write_text(
        "from dataclasses import dataclass\n\n@dataclass\nclass Point:\n    x: int\n    y: int\n"
    )
    payload = build_cell_payload("from shapes import Point\nPoint(1, 2)", files=["shapes.py"], root=notebook)
    replica = run_replica(payload)
    assert replica.returncode == 0, replica.stderr
    monkeypatch.syspath_prepend(str(notebook))  # the notebook imports its helper beside it
    monkeypatch.delitem(sys.modules, "shapes", raising=False)
    with pytest.warns(ResultNotice):
        value = read_result(replica.lines)
    assert type(value).__name__ == "Point" and (value.x, value.y) == (1, 2)


def test_class_defined_in_the_cell_comes_back_as_repr(run_replica):
    replica = run_replica(build_cell_payload("class Box:\n    def __repr__(self):\n        return 'Box()'\nBox()"))
    envelope = decode_frames(replica.lines)
    assert envelope["encoding"] == "repr" and "Box" in envelope["notice"] and "--files" in envelope["notice"]
    with pytest.warns(ResultNotice):
        assert read_result(replica.lines) == "Box()"


def test_unpicklable_value_comes_back_as_repr_with_a_warning(run_replica):
    replica = run_replica(build_cell_payload("(i for i in range(3))"))
    assert replica.returncode == 0
    envelope = decode_frames(replica.lines)
    assert envelope["encoding"] == "repr" and "cannot be pickled" in envelope["notice"]
    with pytest.warns(ResultNotice, match="generator"):
        value = read_result(replica.lines)
    assert value.startswith("<generator object")


def test_raising_cell_sends_an_error_frame_with_only_user_frames(run_replica):
    code = textwrap.dedent("""\
        import json, os
        def check(x):
            if x > 1:
                raise ValueError(f"boom {x}")
        print("before")
        check(json.loads(os.environ["TF_CONFIG"])["task"]["index"] + 1)
        """)
    payload = build_cell_payload(code)
    cluster = {"chief": 1, "worker": 2}
    ok = run_replica(payload, tf_config("worker", 0, cluster))
    assert ok.returncode == 0 and decode_frames(ok.lines) is None  # worker-0 neither raises nor sends
    failed = run_replica(payload, tf_config("worker", 1, cluster))
    assert failed.returncode == 1
    envelope = decode_frames(failed.lines)
    error = envelope["error"]
    assert envelope["replica"] == "worker-1" and envelope["status"] == "error"
    assert (error["type"], error["module"], error["message"], error["origin"]) == (
        "ValueError",
        "builtins",
        "boom 2",
        "user",
    )
    trace = error["traceback"]
    assert 'File "<cell>", line 6, in <module>' in trace and 'raise ValueError(f"boom {x}")' in trace
    assert "bootstrap" not in trace and "_kfj" not in trace and "frames.py" not in trace
    assert trace in failed.stderr  # the usual traceback also goes to the log
    assert list(filter_output(failed.lines)) == ["before\n"]
    with pytest.raises(ValueError, match="boom 2") as caught:
        read_result(failed.lines)
    assert isinstance(caught.value, RemoteError) and str(caught.value) == "worker-1 raised ValueError: boom 2"


def test_chained_exception_keeps_both_user_parts(run_replica):
    code = "try:\n    {}['missing']\nexcept KeyError as e:\n    raise RuntimeError('wrapped') from e"
    error = decode_frames(run_replica(build_cell_payload(code)).lines)["error"]
    assert error["type"] == "RuntimeError"
    assert "{}['missing']" in error["traceback"] and "direct cause" in error["traceback"]
    assert "bootstrap" not in error["traceback"]


def test_error_from_a_library_keeps_the_library_frames_but_not_the_runner(run_replica):
    error = decode_frames(run_replica(build_cell_payload("import json\njson.loads('{bad')")).lines)["error"]
    assert error["type"] == "JSONDecodeError" and error["module"] == "json.decoder"
    assert "json/decoder.py" in error["traceback"] or "json\\decoder.py" in error["traceback"]
    assert "bootstrap.py" not in error["traceback"]


def test_sys_exit(run_replica):
    assert run_replica(build_cell_payload("import sys\nsys.exit(0)")).returncode == 0
    failed = run_replica(build_cell_payload("import sys\nsys.exit(3)"))
    assert failed.returncode == 3
    assert decode_frames(failed.lines)["error"]["type"] == "SystemExit"


def test_too_large_result_is_an_error_suggesting_a_file(run_replica):
    payload = build_cell_payload("'x' * 5000", max_result_bytes=1000)
    replica = run_replica(payload)
    assert replica.returncode == 1
    error = decode_frames(replica.lines)["error"]
    assert error["type"] == "ResultTooLarge" and error["origin"] == "runner"
    with pytest.raises(ResultError, match=r"over the .* limit: write it to a file or a volume"):
        read_result(replica.lines)


def test_a_large_result_travels_in_many_lines(run_replica):
    code = "import random\nrandom.seed(1)\n[random.random() for _ in range(200_000)]"
    replica = run_replica(build_cell_payload(code))
    frame_lines = [line for line in replica.lines if frames_module.MARKER in line]
    assert len(frame_lines) > 100 and max(len(line.encode()) for line in frame_lines) < 4096
    import random

    random.seed(1)
    assert read_result(replica.lines) == [random.random() for _ in range(200_000)]


def test_output_without_trailing_newline_before_the_frame(run_replica):
    replica = run_replica(build_cell_payload("print('partial', end='')\n7"))
    assert read_result(replica.lines) == 7
    assert list(filter_output(replica.lines)) == ["partial\n"]


def test_files_snapshot_is_importable_and_later_edits_change_nothing(run_replica, tmp_path):
    notebook = tmp_path / "notebook"
    (notebook / "pkg").mkdir(parents=True)
    (notebook / "helpers.py").write_text("SCALE = 3\ndef scale(x):\n    return x * SCALE\n")
    (notebook / "pkg" / "__init__.py").write_text("")
    (notebook / "pkg" / "data.txt").write_text("from a file\n")
    code = "import helpers, pathlib\n[helpers.scale(2), pathlib.Path('pkg/data.txt').read_text()]"
    payload = build_cell_payload(code, files=["helpers.py", "pkg"], root=notebook)
    snapshot = payload.write_to(tmp_path / "snapshot")
    (notebook / "helpers.py").write_text("SCALE = 100\ndef scale(x):\n    return x * SCALE\n")
    replica = run_replica(payload, directory=snapshot)
    assert replica.returncode == 0, replica.stderr
    assert read_result(replica.lines) == [6, "from a file\n"]


def test_a_user_module_named_like_a_runner_file_is_the_users(run_replica, tmp_path):
    (tmp_path / "frames.py").write_text("WHO = 'user'\n")
    payload = build_cell_payload("import frames\nframes.WHO", files=["frames.py"], root=tmp_path)
    assert read_result(run_replica(payload).lines) == "user"


def test_copy_payload_from_a_read_only_mount(run_replica, tmp_path):
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "helpers.py").write_text("def answer():\n    return 42\n")
    (tmp_path / "nb" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "nb" / "run.sh").chmod(0o755)
    payload = build_cell_payload(
        "import helpers, os, pathlib\npathlib.Path('out.txt').write_text('written')\n"
        "[helpers.answer(), sorted(os.listdir('.')), os.access('run.sh', os.X_OK)]",
        files=["helpers.py", "run.sh"],
        root=tmp_path / "nb",
    )
    mount = payload.write_to(tmp_path / "mount")
    for path in sorted(mount.rglob("*"), reverse=True):
        path.chmod(stat.S_IREAD | stat.S_IEXEC | (stat.S_IXUSR if path.is_dir() else 0))
    work = tmp_path / "work"
    work.mkdir()
    try:
        replica = run_replica(payload, directory=work, payload_dir=str(mount))
    finally:
        for path in [mount, *mount.rglob("*")]:
            path.chmod(0o755)
    assert replica.returncode == 0, replica.stderr
    assert read_result(replica.lines) == [42, ["helpers.py", "out.txt", "run.sh"], True]


def test_packages_are_installed_with_pip_first_and_a_failure_is_reported(run_replica):
    payload = build_cell_payload("1", packages=["./no-such-package-dir"])
    replica = run_replica(payload)
    assert replica.returncode == 1
    assert "pip install ./no-such-package-dir" in replica.stderr
    with pytest.raises(ResultError, match=r"pip install \./no-such-package-dir failed"):
        read_result(replica.lines)
    skipped = run_replica(payload, install_packages=False)
    assert skipped.returncode == 0 and read_result(skipped.lines) == 1


def test_runner_files_use_only_the_standard_library():
    for module in (bootstrap_module, runner_module, frames_module):
        tree = ast.parse(Path(module.__file__).read_text(), feature_version=(3, 8))
        imported = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        }
        assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


# The oldest Python of a TF 2.x image (3.8) and newer ones than the notebook's, where installed.
OTHER_PYTHONS = {
    v: p
    for v in ("3.8.18", "3.12.1", "3.13.0")
    if os.path.exists(p := os.path.expanduser(f"~/.pyenv/versions/{v}/bin/python"))
}


@pytest.mark.skipif(not OTHER_PYTHONS, reason="no other Python interpreter on this machine")
@pytest.mark.parametrize("python", list(OTHER_PYTHONS.values()), ids=list(OTHER_PYTHONS))
def test_bootstrap_runs_on_other_pythons_without_kubeflow_jupyter(run_replica, python):
    ok = run_replica(build_cell_payload("import sys\n{'v': sys.version_info[0], 'set': 1}"), python=python)
    assert ok.returncode == 0, ok.stderr
    assert read_result(ok.lines) == {"v": 3, "set": 1}
    failed = run_replica(
        build_cell_payload("x = 1\nraise KeyError('k')"), tf_config("worker", 3, {"worker": 4}), python=python
    )
    assert failed.returncode == 1
    with pytest.raises(KeyError) as caught:
        read_result(failed.lines)
    assert str(caught.value) == "worker-3 raised KeyError: 'k'"
    assert "raise KeyError('k')" in caught.value.remote_traceback and "bootstrap" not in caught.value.remote_traceback


def test_ipython_syntax_never_reaches_a_replica():
    with pytest.raises(PayloadError):
        build_cell_payload("!ls")


@pytest.mark.parametrize(
    "cluster",
    [
        {"chief": 1, "worker": 2, "ps": 1},
        {"master": 1, "worker": 3},
        {"worker": 2, "ps": 2},
        {"ps": 1, "evaluator": 1},
        {"ps": 2},
        {"chief": 1, "master": 1},
        {"worker": 0, "evaluator": 1},
    ],
)
def test_bootstrap_picks_the_replica_the_domain_calls_default(cluster):
    from kubeflow_jupyter.tfjob.model import REPLICA_TYPES
    from kubeflow_jupyter.tfjob.status import default_replica_id

    replicas = [(kind, i) for kind in REPLICA_TYPES for i in range(cluster.get(kind.lower(), 0))]
    hosts = {kind: ["h"] * count for kind, count in cluster.items()}
    assert runner_module.default_result_replica(hosts) == default_replica_id(replicas)


def test_write_to_caches_the_runner_code_and_the_bootstrap_uses_it_only_while_it_matches(run_replica, tmp_path):
    from kubeflow_jupyter.runcell import payload as payload_module

    payload = build_cell_payload("41 + 1")
    target = payload.write_to(tmp_path / "snap")
    runner, cache = target / "_kfj" / "runner.py", target / "_kfj" / "runner.code"
    header = bootstrap_module.code_header(str(runner))
    assert payload_module.code_header(runner) == header  # the writer and the reader agree
    assert cache.read_bytes().startswith(header)

    stand_in = "import sys\ndef main(argv):\n    sys.stdout.write('from the cache\\n')\n    return 3\n"
    cache.write_bytes(header + marshal.dumps(compile(stand_in, "<kfj-runner>", "exec")))
    cached = run_replica(payload, directory=target)
    assert (cached.returncode, cached.stdout) == (3, "from the cache\n")

    cache.write_bytes(b"\0\0\0\0" + cache.read_bytes()[4:])  # another interpreter's: compiled from source
    assert read_result(run_replica(payload, directory=target).lines) == 42
    cache.write_bytes(header + marshal.dumps(compile(stand_in, "<kfj-runner>", "exec")))
    runner.write_text(runner.read_text() + "# edited by hand\n")  # a stale cache: the source wins
    assert read_result(run_replica(payload, directory=target).lines) == 42


def test_cached_runner_code_names_the_runner_files_so_tracebacks_hide_them(run_replica):
    """The cached code's filenames are fixed up to the runner files' paths: its frames are left out."""
    payload = build_cell_payload("def f():\n    raise KeyError('k')\nf()")
    failed = run_replica(payload)
    trace = decode_frames(failed.lines)["error"]["traceback"]
    assert trace.splitlines()[1:] == [
        '  File "<cell>", line 3, in <module>',
        "    f()",
        '  File "<cell>", line 2, in f',
        "    raise KeyError('k')",
        "KeyError: 'k'",
    ]
