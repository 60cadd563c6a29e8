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
