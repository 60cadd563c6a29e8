"""`%load_ext kubeflow_jupyter` must stay cheap: nothing heavy is imported until first needed."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("tensorflow", "grpc", "kubernetes", "ipywidgets")

PROBE = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
heavy = {heavy!r}
loaded = lambda: sorted(m for m in heavy if m in sys.modules)
before = loaded()
shell.run_line_magic("load_ext", "kubeflow_jupyter")
after_load = loaded()
registered = "tfjob" in shell.magics_manager.magics["line"]
shell.run_line_magic("tfjob", "list")  # the local backend lists jobs without TensorFlow either
after_list = loaded()
print(json.dumps({{"before": before, "after_load": after_load, "after_list": after_list, "registered": registered}}))
"""


def test_load_ext_imports_nothing_heavy_in_a_fresh_interpreter():
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"before": [], "after_load": [], "after_list": [], "registered": True}, proc.stderr


UNLOAD = """
import json
from IPython.core.interactiveshell import InteractiveShell
from kubeflow_jupyter.tfjob.status import JobSnapshot
shell = InteractiveShell.instance()
magics = shell.magics_manager.magics
names = lambda: {"line": sorted({"tfjob", "model"} & set(magics["line"])), "cell": sorted({"tfjob"} & set(magics["cell"]))}
shows_table = lambda: "kfj-table" in shell.display_formatter.format(JobSnapshot("probe"))[0].get("text/html", "")
seen = {}
shell.run_line_magic("load_ext", "kubeflow_jupyter")
seen["loaded"] = [names(), shows_table()]
shell.run_line_magic("unload_ext", "kubeflow_jupyter")
seen["unloaded"] = [names(), shows_table(), shell.run_cell("%tfjob list").success]
shell.run_line_magic("load_ext", "kubeflow_jupyter")
seen["reloaded"] = [names(), shows_table(), shell.run_cell("%tfjob list").success]
print(json.dumps(seen))
"""


def test_unload_ext_removes_the_magics_and_formatters_and_load_ext_brings_them_back():
    proc = subprocess.run([sys.executable, "-c", UNLOAD], capture_output=True, text=True, timeout=120, check=True)
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    registered = {"line": ["model", "tfjob"], "cell": ["tfjob"]}
    assert seen == {
        "loaded": [registered, True],
        "unloaded": [{"line": [], "cell": []}, False, False],
        "reloaded": [registered, True, True],
    }, proc.stderr
