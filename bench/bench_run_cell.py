"""The same code run as a cell (``client.run_cell``, what ``%%tfjob run`` calls) vs as a script
file through ``submit`` + ``wait`` (what ``kubeflow-jupyter submit --wait`` does), on the local
backend with the same replicas (a chief and two workers) and the same interpreter.

Anchor: the script path — a TFJob whose command is ``python script.py``, submitted and waited
for. Measured: the cell path — the payload built (syntax check, snapshot of the code), the job
created with it, waited for, and its result read back from the chief's log (the bootstrap, the
result channel and the snapshot are what the cell path adds). Both run in this process, one
client, alternating rounds (script, cell, script, cell, …) so machine load hits both; each job
is deleted (outside the timed part) before the next one starts, so neither starts beside the
other's exiting supervisor.
Prints medians and best runs, and cell/script. Goal: <= 1.10.

    .venv/bin/python bench/bench_run_cell.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

CODE = """\
import json, os
task = json.loads(os.environ["TF_CONFIG"])["task"]
total = sum(i * i for i in range(300_000))
print(task["type"], task["index"], total)
{"task": task, "total": total}
"""

YAML = """\
apiVersion: kubeflow.org/v1
kind: TFJob
metadata:
  name: {name}
spec:
  tfReplicaSpecs:
{replicas}"""

REPLICA = """    {kind}:
      replicas: {count}
      restartPolicy: Never
      template:
        spec:
          containers:
          - name: tensorflow
            image: python:3.11-slim
            command: ["python", "script.py"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # A 2-core machine shared with other work: fewer rounds than this and the medians are noise.
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as work:
        os.environ["KUBEFLOW_JUPYTER_HOME"] = home
        from kubeflow_jupyter.client import TFJobClient

        client = TFJobClient("local")
        # The script prints the same and ends like the cell (its value is printed, not returned).
        Path(work, "script.py").write_text(CODE.rsplit("\n", 2)[0] + '\nprint({"task": task, "total": total})\n')
        replicas = REPLICA.format(kind="Chief", count=1) + REPLICA.format(kind="Worker", count=2)
        script_times, cell_times = [], []
        for round_ in range(args.rounds + 1):  # round 0 warms the file cache, not counted
            start = time.perf_counter()
            name = f"script-{round_}"
            client.submit(YAML.format(name=name, replicas=replicas), workdir=work)
            client.wait(name)
            script_s = time.perf_counter() - start
            # Each job is deleted before the next one is timed: a job's supervisor outlives `wait`
            # by tens of ms (it writes the final status, then exits), which would land in the next
            # path's time; delete stops it. Deleting both after the cell charged it to the cell only.
            client.delete(name)

            start = time.perf_counter()
            job = client.run_cell(CODE, chief=True, workers=2, name=f"cell-{round_}", root=work)
            value = job.result()
            cell_s = time.perf_counter() - start
            assert value["task"] == {"type": "chief", "index": 0}, value
            client.delete(job.name)
            if round_:
                script_times.append(script_s)
                cell_times.append(cell_s)
                print(f"round {round_}: script {script_s:.3f}s  cell {cell_s:.3f}s", flush=True)
    s, c = statistics.median(script_times), statistics.median(cell_times)
    print(f"median: script (submit --wait) {s:.3f}s, cell (run_cell + result) {c:.3f}s")
    print(f"best:   script {min(script_times):.3f}s, cell {min(cell_times):.3f}s")
    print(
        f"ratio cell/script = {c / s:.3f} (medians), {min(cell_times) / min(script_times):.3f} (best runs); goal <= 1.10"
    )


if __name__ == "__main__":
    main()
