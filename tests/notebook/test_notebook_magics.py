"""%tfjob / %%tfjob in a real IPython InteractiveShell, over the in-memory backend double.

The real local backend with real TensorFlow processes is exercised in test_notebook_e2e.py.
"""

from __future__ import annotations

import _thread
import threading
from pathlib import Path

import pytest
from notebook_helpers import TWO_REPLICA_JOB, eventually

from kubeflow_jupyter.handle import TFJobHandle
from kubeflow_jupyter.job_display import JobTable
from kubeflow_jupyter.tfjob.status import JobSnapshot

REPO = Path(__file__).resolve().parents[2]
LEGACY_YAML = (REPO / "examples" / "tfjob-legacy.yaml").read_text()


def run(shell, line: str):
    return shell.run_line_magic("tfjob", line)


def submit_two_replicas(shell) -> TFJobHandle:
    return shell.run_cell_magic("tfjob", "submit", TWO_REPLICA_JOB)


def assert_one_clean_error(err: str, *needles: str) -> None:
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) >= 1
    for needle in needles:
        assert needle in err


def run_failing(shell, capsys, source: str) -> tuple[BaseException, str]:
    """Run a cell that must fail: the error it raised and what the cell showed (no traceback)."""
    result = shell.run_cell(source)
    assert result.error_in_exec is not None, "the cell fails, so Run All stops there"
    shown = capsys.readouterr()
    assert "Traceback" not in shown.out + shown.err
    return result.error_in_exec, shown.out + shown.err


def test_load_ext_registers_line_and_cell_magic_with_full_help(ipython_shell, capsys):
    magics = ipython_shell.magics_manager.magics
    assert "tfjob" in magics["line"] and "tfjob" in magics["cell"]
    ipython_shell.run_cell("%tfjob?")
    help_text = capsys.readouterr().out
    for word in (
        "submit",
        "list",
        "watch",
        "logs",
        "wait",
        "delete",
        "--name",
        "--command",
        "--backend",
        "--namespace",
        "--dry-run",
        "--replica",
        "--follow",
        "--tail",
        "--timeout",
        "--watch",
    ):
        assert word in help_text, word


def test_cell_submit_of_the_seed_yaml_converts_it_and_applies_command_with_var_expansion(
    ipython_shell, tfjob_magics, memory_backend, capsys
):
    ipython_shell.user_ns["script"] = "examples/tf_sample/tf_sample.py"
    result = ipython_shell.run_cell(f'%%tfjob submit --command "python {{script}}"\n{LEGACY_YAML}')
    assert result.success
    out = capsys.readouterr().out
    assert "converted" in out and "tensorflow.org/v1alpha1" in out
    assert "tfjob 'example-job' created" in out
    (job,) = memory_backend.created
    assert sorted(job.replica_specs) == ["Master", "PS", "Worker"]
    assert job.replica_specs["Worker"].command == ["python", "examples/tf_sample/tf_sample.py"]
    assert tfjob_magics.last_job.name == "example-job"


def test_line_submit_from_file_returns_a_handle(ipython_shell, tfjob_magics, memory_backend, tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text(TWO_REPLICA_JOB)
    ipython_shell.user_ns.update(path=str(path), n=7)
    assert ipython_shell.run_cell("job = %tfjob submit {path} --name run-{n}").success
    job = ipython_shell.user_ns["job"]
    assert isinstance(job, TFJobHandle) and job.name == "run-7"
    assert job.status.state == "Created"
    assert [r.id for r in job.status.replicas] == ["chief-0", "worker-0"]
    assert "run-7" in job._repr_html_() and "kfj-badge-created" in job._repr_html_()


@pytest.mark.parametrize(
    "line, cell, error, needles",
    [
        (
            "submit",
            "apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {name: bad}\nspec: {tfReplicaSpecs: {Worker: {replicas: 1}}}\n",
            "SpecError",
            ["invalid TFJob", "tfReplicaSpecs.Worker"],
        ),
        ("submit /no/such/file.yaml", None, "SpecError", ["cannot read /no/such/file.yaml"]),
        ("submit", None, "UsageError", ["submit needs a TFJob"]),
        ("frobnicate x", None, "UsageError", ["invalid choice: 'frobnicate'", "%tfjob?"]),
        ("wait mnist --follow", None, "UsageError", ["unrecognized arguments: --follow"]),
        ("list --watch", None, "UsageError", ["unrecognized arguments: --watch"]),
        ("get does-not-exist", None, "JobNotFound", ["no TFJob named 'does-not-exist'", "(see `%tfjob list`)"]),
        ("logs", None, "UsageError", ["needs a job name"]),
        ("list --backend mars", None, "UsageError", ["argument --backend: invalid choice: 'mars'"]),
        (
            "logs x --tail -1",
            None,
            "UsageError",
            ["argument --tail: must be an integer from 0", "`%tfjob logs --help`"],
        ),
        ("list", "some body", "UsageError", ["submit only"]),
    ],
)
def test_a_refused_verb_fails_the_cell_with_one_message_and_creates_nothing(
    ipython_shell, tfjob_magics, memory_backend, capsys, line, cell, error, needles
):
    source = f"%%tfjob {line}\n{cell}" if cell else f"%tfjob {line}"
    raised, shown = run_failing(ipython_shell, capsys, source)
    assert type(raised).__name__ == error
    assert shown.startswith(f"{error}: ")
    assert_one_clean_error(shown, *needles)
    if error != "SpecError":  # a spec's problems are listed one per line
        assert len(shown.strip().splitlines()) == 1, shown
    assert "kubeflow-jupyter list" not in shown  # the notebook's hint, not the terminal's
    assert memory_backend.created == []


def test_a_refused_cell_submit_stops_run_all(ipython_shell, tfjob_magics, memory_backend, capsys):
    """A refused %%tfjob submit raises, so the next cell of a Run All is never reached."""
    raised, shown = run_failing(ipython_shell, capsys, "%%tfjob submit --name bad\nkind: NotATFJob\n")
    assert type(raised).__name__ == "SpecError" and shown.startswith("SpecError: invalid TFJob")
    assert memory_backend.created == []


def test_the_magic_and_the_cli_give_the_same_message_for_a_bad_option(ipython_shell, tfjob_magics, capsys):
    from kubeflow_jupyter.cli import main

    for argv in (
        ["logs", "x", "--tail", "-3"],
        ["wait", "x", "--timeout", "nan"],
        ["list", "--backend", "mars"],
        ["get", "x", "-o", "xml"],
        ["delete", "x", "--tail", "5"],
        ["--backend", "mars", "list"],
    ):
        assert main(argv) == 2
        cli_line = capsys.readouterr().err
        raised, shown = run_failing(ipython_shell, capsys, "%tfjob " + " ".join(argv))
        assert cli_line.startswith(f"kubeflow-jupyter: {raised} (see `kubeflow-jupyter ")  # each its own hint
        assert shown.startswith(f"UsageError: {raised} (see ") and "%tfjob" in shown.split("(see ")[-1]


def test_global_options_before_or_after_the_verb(ipython_shell, tfjob_magics):
    made = []
    factory = tfjob_magics.client_factory
    tfjob_magics.client_factory = lambda *key: made.append(key) or factory(*key)
    run(ipython_shell, "--namespace team-a list")
    run(ipython_shell, "list -n team-b --backend local")
    run(ipython_shell, "--backend local -n team-a list --namespace team-c")  # the later one wins, as in kubectl
    assert made == [("local", "team-a", None, None), ("local", "team-b", None, None), ("local", "team-c", None, None)]


def test_list_and_get_outputs_print_text(ipython_shell, tfjob_magics, memory_backend, capsys):
    import json

    import yaml

    submit_two_replicas(ipython_shell)
    capsys.readouterr()
    assert run(ipython_shell, "list -o wide") is None
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[-3:] == ["NAMESPACE", "REPLICAS", "MESSAGE"]
    assert row.split()[0] == "mnist" and "Chief:1,Worker:1" in row
    assert run(ipython_shell, "list -o json") is None
    listed = json.loads(capsys.readouterr().out)
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["mnist"]
    assert run(ipython_shell, "list -o yaml") is None
    assert yaml.safe_load(capsys.readouterr().out) == listed
    assert run(ipython_shell, "get -o json") is None
    assert json.loads(capsys.readouterr().out) == listed["items"][0]
    assert run(ipython_shell, "status mnist -o wide") is None
    wide = capsys.readouterr().out
    header = next(line for line in wide.splitlines() if line.startswith("REPLICA"))
    assert header.split() == [
        "REPLICA",
        "TYPE",
        "INDEX",
        "PHASE",
        "RESTARTS",
        "EXIT",
        "STARTED",
        "FINISHED",
        "POD",
        "MESSAGE",
    ]
    assert "mnist-chief-0" in wide and "State:       Created" in wide


def test_help_of_one_verb_is_printed_and_the_cell_succeeds(ipython_shell, tfjob_magics, capsys):
    result = ipython_shell.run_cell("%tfjob logs --help")
    assert result.success
    out = capsys.readouterr().out
    assert out.startswith("usage: %tfjob logs") and "--tail N" in out and "--watch" not in out


def test_dry_run_prints_the_manifest_and_creates_nothing(ipython_shell, tfjob_magics, memory_backend, capsys):
    assert ipython_shell.run_cell_magic("tfjob", "submit --dry-run --name trial", TWO_REPLICA_JOB) is None
    out = capsys.readouterr().out
    assert "dry run" in out and "nothing was created" in out
    assert "apiVersion: kubeflow.org/v1" in out and "name: trial" in out
    assert memory_backend.created == [] and memory_backend.list() == []


def test_list_renders_a_table_in_html_and_text(ipython_shell, tfjob_magics, memory_backend):
    assert len(run(ipython_shell, "list")) == 0
    submit_two_replicas(ipython_shell)
    memory_backend.set_phase("mnist", "chief-0", "Running")
    table = run(ipython_shell, "list")
    assert isinstance(table, JobTable) and table.names == ["mnist"]
    html = table._repr_html_()
    assert "<table" in html and "kfj-badge-running" in html and "<b>mnist</b>" in html
    text = str(table)
    header, row = text.splitlines()
    assert header.split() == ["NAME", "STATE", "ACTIVE", "SUCCEEDED", "FAILED", "AGE", "BACKEND"]
    assert row.split()[:5] == ["mnist", "Running", "1", "0", "0"] and row.split()[-1] == "memory"


def test_get_and_status_default_to_the_last_submitted_job(ipython_shell, tfjob_magics):
    submit_two_replicas(ipython_shell)
    for verb in ("get", "status", "get mnist"):
        job = run(ipython_shell, verb)
        assert isinstance(job, TFJobHandle) and job.name == "mnist"


def test_snapshots_display_as_the_status_table(ipython_shell, tfjob_magics):
    job = submit_two_replicas(ipython_shell)
    snapshot = job.status
    assert isinstance(snapshot, JobSnapshot)
    bundle, _ = ipython_shell.display_formatter.format(snapshot)
    assert "kfj-table" in bundle["text/html"] and "chief-0" in bundle["text/html"]
    assert bundle["text/plain"].startswith("NAME") and "worker-0" in bundle["text/plain"]


def test_one_client_per_backend_and_namespace(ipython_shell, tfjob_magics):
    made = []
    factory = tfjob_magics.client_factory
    tfjob_magics.client_factory = lambda *key: made.append(key) or factory(*key)
    for line in (
        "list",
        "list --namespace team-a",
        "list --namespace team-a --backend local",
        "list --namespace team-b",
        "list",
    ):
        run(ipython_shell, line)
    assert made == [("local", None, None, None), ("local", "team-a", None, None), ("local", "team-b", None, None)]
    assert tfjob_magics.client(None, "team-a").namespace == "team-a"


def finish_later(backend, name: str, state: str = "Succeeded", message: str = "") -> threading.Thread:
    """Drive the job to its end from another thread while the magic blocks."""

    def lifecycle():
        backend.set_phase(name, "chief-0", "Running")
        backend.set_phase(name, "worker-0", "Running")
        backend.append_log(name, "chief-0", "step 1", "step 2")
        code = 0 if state == "Succeeded" else 3
        backend.set_phase(name, "chief-0", state, code)
        backend.set_phase(name, "worker-0", "Succeeded", 0)
        backend.finish(name, state, message)

    thread = threading.Thread(target=lifecycle)
    thread.start()
    return thread


def test_wait_shows_progress_and_returns_the_final_snapshot(ipython_shell, tfjob_magics, memory_backend, capsys):
    submit_two_replicas(ipython_shell)
    capsys.readouterr()
    finisher = finish_later(memory_backend, "mnist")
    final = run(ipython_shell, "wait mnist --timeout 30")
    finisher.join()
    assert final.state == "Succeeded"
    out = capsys.readouterr().out
    assert "2/2 replicas finished · Succeeded" in out


def test_wait_on_a_failing_job_fails_the_cell_with_the_reason_and_where_to_look(
    ipython_shell, tfjob_magics, memory_backend, capsys
):
    submit_two_replicas(ipython_shell)
    finisher = finish_later(memory_backend, "mnist", "Failed", "chief-0 exited with code 3")
    result = ipython_shell.run_cell("%tfjob wait")
    finisher.join()
    assert type(result.error_in_exec).__name__ == "JobFailed", "the cell fails, so Run All stops"
    shown = capsys.readouterr()
    assert_one_clean_error(
        shown.out + shown.err,
        "JobFailed: TFJob 'mnist' failed",
        "exited with code 3",
        "%tfjob logs mnist --replica chief-0",
    )


def test_wait_timeout_fails_the_cell_and_the_job_keeps_running(ipython_shell, tfjob_magics, memory_backend, capsys):
    submit_two_replicas(ipython_shell)
    raised, shown = run_failing(ipython_shell, capsys, "%tfjob wait --timeout 0.3")
    assert type(raised).__name__ == "WaitTimeout"
    assert_one_clean_error(shown, "did not finish within 0.3s")
    assert memory_backend.get("mnist").state == "Created"


def test_logs_prints_lines_of_the_default_or_chosen_replica(ipython_shell, tfjob_magics, memory_backend, capsys):
    submit_two_replicas(ipython_shell)
    memory_backend.append_log("mnist", "chief-0", "chief a", "chief b", "chief c")
    memory_backend.append_log("mnist", "worker-0", "worker a")
    capsys.readouterr()
    run(ipython_shell, "logs")
    assert capsys.readouterr().out.splitlines() == ["chief a", "chief b", "chief c"]
    run(ipython_shell, "logs mnist --replica worker-0")
    assert capsys.readouterr().out.splitlines() == ["worker a"]
    run(ipython_shell, "logs --tail 1")
    assert capsys.readouterr().out.splitlines() == ["chief c"]
    raised, shown = run_failing(ipython_shell, capsys, "%tfjob logs --replica ps-9")
    assert type(raised).__name__ == "ReplicaNotFound" and "ps-9" in shown


def test_logs_follow_streams_until_the_replica_ends(ipython_shell, tfjob_magics, memory_backend, capsys):
    submit_two_replicas(ipython_shell)
    capsys.readouterr()
    finisher = finish_later(memory_backend, "mnist")
    run(ipython_shell, "logs --follow")
    finisher.join()
    assert capsys.readouterr().out.splitlines() == ["step 1", "step 2"]


def test_ctrl_c_stops_following_and_leaves_the_job_running(ipython_shell, tfjob_magics, memory_backend, capsys):
    submit_two_replicas(ipython_shell)
    memory_backend.set_phase("mnist", "chief-0", "Running")
    memory_backend.append_log("mnist", "chief-0", "first line")

    def interrupt_once_streaming():
        eventually(lambda: "first line" in capsys.readouterr().out or None, what="the first streamed line")
        _thread.interrupt_main()  # what Ctrl-C / the kernel's interrupt does

    capsys.readouterr()
    interrupter = threading.Thread(target=interrupt_once_streaming)
    interrupter.start()
    run(ipython_shell, "logs mnist --follow")
    interrupter.join()
    assert_one_clean_error(capsys.readouterr().err, "stopped following", "keeps running")
    assert memory_backend.get("mnist").state == "Running"


def test_delete_removes_the_job(ipython_shell, tfjob_magics, memory_backend, capsys):
    submit_two_replicas(ipython_shell)
    run(ipython_shell, "delete")
    assert "tfjob 'mnist' deleted" in capsys.readouterr().out
    assert memory_backend.list() == []
    _, shown = run_failing(ipython_shell, capsys, "%tfjob delete mnist")
    assert_one_clean_error(shown, "JobNotFound: no TFJob named 'mnist'")


def test_handle_methods_go_through_the_client(ipython_shell, tfjob_magics, memory_backend):
    job = submit_two_replicas(ipython_shell)
    finisher = finish_later(memory_backend, "mnist")
    assert job.wait(timeout=30).state == "Succeeded"
    finisher.join()
    assert job.state == "Succeeded"
    assert job.logs() == "step 1\nstep 2"
    assert job.logs(tail=1) == "step 2"
    assert job.manifest["kind"] == "TFJob"
    job.delete()
    assert "no TFJob named &#x27;mnist&#x27;" in job._repr_html_()


def test_watch_in_terminal_ipython_prints_each_change_until_the_end(
    ipython_shell, tfjob_magics, memory_backend, capsys
):
    submit_two_replicas(ipython_shell)
    capsys.readouterr()
    finisher = finish_later(memory_backend, "mnist")
    assert run(ipython_shell, "watch") is None
    finisher.join()
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("mnist: [####################] 2/2 replicas finished · Succeeded")
    assert len(lines) == len(set(line.rsplit("·", 1)[0] for line in lines))  # no repeated states


def test_handle_wait_raises_job_failed_so_run_all_stops(ipython_shell, tfjob_magics, memory_backend):
    from kubeflow_jupyter.errors import JobFailed

    job = submit_two_replicas(ipython_shell)
    finisher = finish_later(memory_backend, "mnist", "Failed", "chief-0 exited with code 3")
    with pytest.raises(JobFailed, match="exited with code 3"):
        job.wait(timeout=30)
    finisher.join()


def test_no_test_leaves_its_client_factory_on_the_shared_shell(ipython_shell):
    """Runs after tests that pointed the magics at an in-memory double or wrapped their factory:
    the shell is process-wide, so the product's own factory must be back (tests/support/magics.py)."""
    factory = ipython_shell.magics_manager.registry["TFJobMagics"].client_factory
    assert factory.__module__.startswith("kubeflow_jupyter."), factory


def test_verb_options_keeps_only_the_client_methods_keywords():
    from argparse import Namespace

    from kubeflow_jupyter.client import TFJobClient, verb_options

    parsed = Namespace(verb="submit", file="x.yaml", name="n", dry_run=True, validate="warn", watch=True, backend=None)
    assert verb_options(TFJobClient.submit, parsed) == {"name": "n", "dry_run": True, "validate": "warn"}


@pytest.mark.parametrize(
    "verb, method, notebook_only",
    [("submit", "submit", {"file", "watch"}), ("run", "run_cell", {"no_wait"})],
)
def test_every_option_of_a_notebook_verb_reaches_the_client(verb, method, notebook_only):
    """The verb table names an option after the client keyword it feeds: a renamed keyword would drop it."""
    import inspect

    from kubeflow_jupyter.client import TFJobClient
    from kubeflow_jupyter.errors import NOTEBOOK
    from kubeflow_jupyter.verbs import GLOBAL_OPTIONS, VERBS, build_parser, verb_parsers

    parser = verb_parsers(build_parser(NOTEBOOK, VERBS, prog="%tfjob", description=""))[verb]
    global_dests = {a.flags[0].lstrip("-") for a in GLOBAL_OPTIONS}
    dests = {a.dest for a in parser._actions if a.dest != "help"} - global_dests - notebook_only
    assert dests <= set(inspect.signature(getattr(TFJobClient, method)).parameters)
