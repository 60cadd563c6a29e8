"""The operator's rules, table-driven: restarts, success, failure, run policy, conditions."""

from __future__ import annotations

import json

import pytest

from kubeflow_jupyter.tfjob import parse_tfjob, rules, tf_config, tf_config_json
from kubeflow_jupyter.tfjob.model import DEFAULT_NAMESPACE
from kubeflow_jupyter.tfjob.status import Condition, JobSnapshot, ReplicaState

T0 = "2026-01-01T00:00:00Z"


def job(run_policy=None, success_policy=None, **replicas):
    specs = {
        t: {
            "replicas": n,
            "restartPolicy": policy,
            "template": {"spec": {"containers": [{"name": "tensorflow", "image": "tf", "command": ["python"]}]}},
        }
        for t, (n, policy) in replicas.items()
    }
    spec = {"tfReplicaSpecs": specs}
    if run_policy:
        spec["runPolicy"] = run_policy
    if success_policy is not None:
        spec["successPolicy"] = success_policy
    return parse_tfjob({"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "j"}, "spec": spec}).job


def replicas(**phases):
    """replicas(worker_0="Running", ps_1="Failed") → ReplicaState list."""
    out = []
    for key, phase in phases.items():
        rtype, index = key.rsplit("_", 1)
        rtype = {"ps": "PS"}.get(rtype, rtype.capitalize())
        exit_code = 0 if phase == "Succeeded" else 1 if phase == "Failed" else None
        out.append(ReplicaState(rtype, int(index), phase=phase, exit_code=exit_code))
    return out


@pytest.mark.parametrize(
    "policy,code,restart",
    [
        ("Never", 0, False),
        ("Never", 1, False),
        ("Never", 137, False),
        ("OnFailure", 0, False),
        ("OnFailure", 1, True),
        ("OnFailure", 137, True),
        ("Always", 0, True),
        ("Always", 1, True),
        ("ExitCode", 0, False),
        ("ExitCode", 1, False),
        ("ExitCode", 127, False),
        ("ExitCode", 128, True),
        ("ExitCode", 137, True),
        ("ExitCode", 143, True),
    ],
)
def test_restart_decisions(policy, code, restart):
    assert rules.should_restart(policy, code) is restart
    expected = rules.RESTART if restart else rules.EXIT_SUCCEEDED if code == 0 else rules.EXIT_FAILED
    assert rules.exit_outcome(policy, code) == expected


# (job, replica phases, expected finished state, expected latest condition)
CHIEF_JOB = dict(Chief=(1, "Never"), Worker=(2, "Never"), PS=(1, "Never"))
WORKERS_ONLY = dict(Worker=(2, "Never"), PS=(1, "Never"))
SCENARIOS = [
    (
        "chief running",
        CHIEF_JOB,
        {},
        dict(chief_0="Running", worker_0="Running", worker_1="Running", ps_0="Running"),
        None,
        "Running",
    ),
    (
        "chief done, workers still running",
        CHIEF_JOB,
        {},
        dict(chief_0="Succeeded", worker_0="Running", worker_1="Running", ps_0="Running"),
        "Succeeded",
        "Succeeded",
    ),
    (
        "worker 0 done is not enough with a chief",
        CHIEF_JOB,
        {},
        dict(chief_0="Running", worker_0="Succeeded", worker_1="Running", ps_0="Running"),
        None,
        "Running",
    ),
    (
        "worker 0 done (default policy)",
        WORKERS_ONLY,
        {},
        dict(worker_0="Succeeded", worker_1="Running", ps_0="Running"),
        "Succeeded",
        "Succeeded",
    ),
    (
        "worker 1 done only",
        WORKERS_ONLY,
        {},
        dict(worker_0="Running", worker_1="Succeeded", ps_0="Running"),
        None,
        "Running",
    ),
    (
        "AllWorkers needs every worker",
        WORKERS_ONLY,
        {"success_policy": "AllWorkers"},
        dict(worker_0="Succeeded", worker_1="Running", ps_0="Running"),
        None,
        "Running",
    ),
    (
        "AllWorkers all done",
        WORKERS_ONLY,
        {"success_policy": "AllWorkers"},
        dict(worker_0="Succeeded", worker_1="Succeeded", ps_0="Running"),
        "Succeeded",
        "Succeeded",
    ),
    (
        "a failed PS fails the job",
        CHIEF_JOB,
        {},
        dict(chief_0="Running", worker_0="Running", worker_1="Running", ps_0="Failed"),
        "Failed",
        "Failed",
    ),
    (
        "a failed worker fails the job",
        WORKERS_ONLY,
        {},
        dict(worker_0="Running", worker_1="Failed", ps_0="Running"),
        "Failed",
        "Failed",
    ),
    (
        "a failed evaluator fails the job",
        dict(Chief=(1, "Never"), Evaluator=(1, "Never")),
        {},
        dict(chief_0="Running", evaluator_0="Failed"),
        "Failed",
        "Failed",
    ),
    (
        "master counts as chief",
        dict(Master=(1, "Never"), Worker=(1, "Never")),
        {},
        dict(master_0="Succeeded", worker_0="Running"),
        "Succeeded",
        "Succeeded",
    ),
    (
        "pending pods: only Created",
        CHIEF_JOB,
        {},
        dict(chief_0="Pending", worker_0="Pending", worker_1="Pending", ps_0="Pending"),
        None,
        "Created",
    ),
]


@pytest.mark.parametrize("name,spec,opts,phases,finished,latest", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_job_status_rules(name, spec, opts, phases, finished, latest):
    j = job(**opts, **spec)
    update = rules.update_job_status(j, replicas(**phases), rules.created_condition(j, T0), start_time=T0, now=T0)
    assert update.finished == finished
    assert update.conditions[-1].type == latest
    assert (update.completion_time is not None) == (finished is not None)
    if finished:
        running = [c for c in update.conditions if c.type == "Running"]
        assert all(c.status == "False" for c in running), "Running stays, with status False, after completion"


def test_running_condition_kept_false_after_success_and_reasons():
    j = job(**CHIEF_JOB)
    conds = rules.created_condition(j, T0)
    running = rules.update_job_status(
        j, replicas(chief_0="Running", worker_0="Running", worker_1="Running", ps_0="Running"), conds, now=T0
    )
    assert [(c.type, c.status, c.reason) for c in running.conditions] == [
        ("Created", "True", "TFJobCreated"),
        ("Running", "True", "TFJobRunning"),
    ]
    assert running.conditions[1].message == f"TFJob {DEFAULT_NAMESPACE}/j is running."
    done = rules.update_job_status(
        j,
        replicas(chief_0="Succeeded", worker_0="Running", worker_1="Running", ps_0="Running"),
        running.conditions,
        now="2026-01-01T00:01:00Z",
    )
    assert [(c.type, c.status, c.reason) for c in done.conditions] == [
        ("Created", "True", "TFJobCreated"),
        ("Running", "False", "TFJobRunning"),
        ("Succeeded", "True", "TFJobSucceeded"),
    ]
    snap = JobSnapshot(name="j", conditions=done.conditions)
    assert snap.state == "Succeeded" and snap.finished


def test_failed_is_final():
    j = job(**WORKERS_ONLY)
    failed = rules.update_job_status(
        j, replicas(worker_0="Running", worker_1="Failed", ps_0="Running"), rules.created_condition(j, T0)
    )
    assert failed.finished == "Failed"
    assert "has failed because 1 Worker replica(s) failed" in failed.conditions[-1].message
    later = rules.update_job_status(
        j, replicas(worker_0="Succeeded", worker_1="Failed", ps_0="Running"), failed.conditions
    )
    assert later.finished == "Failed" and later.conditions == failed.conditions
    assert rules.set_condition(failed.conditions, "Running", "TFJobRunning", "x") == failed.conditions


def test_exitcode_restart_reports_restarting_then_running_again():
    j = job(Worker=(1, "ExitCode"), PS=(1, "ExitCode"))
    conds = rules.created_condition(j, T0)
    conds = rules.update_job_status(j, replicas(worker_0="Running", ps_0="Running"), conds).conditions
    restarting = rules.update_job_status(j, replicas(worker_0="Failed", ps_0="Running"), conds, restarting=["worker-0"])
    assert restarting.finished is None
    assert restarting.conditions[-1].type == "Restarting" and restarting.conditions[-1].reason == "TFJobRestarting"
    assert not any(c.type == "Running" for c in restarting.conditions), "Running and Restarting replace each other"
    again = rules.update_job_status(j, replicas(worker_0="Running", ps_0="Running"), restarting.conditions)
    assert again.conditions[-1].type == "Running"
    assert not any(c.type == "Restarting" for c in again.conditions)


def test_backoff_limit_counts_restarts_of_running_onfailure_replicas():
    j = job(run_policy={"backoffLimit": 2}, Worker=(2, "OnFailure"))
    rs = replicas(worker_0="Running", worker_1="Running")
    rs[0].restarts = 1
    assert rules.update_job_status(j, rs, []).finished is None
    rs[1].restarts = 1
    update = rules.update_job_status(j, rs, [])
    assert update.finished == "Failed"
    assert update.conditions[-1].message == "Job j has failed because it has reached the specified backoff limit"
    never = job(run_policy={"backoffLimit": 0}, Worker=(1, "Never"))
    r = replicas(worker_0="Running")
    r[0].restarts = 5
    assert not rules.past_backoff_limit(never, r), "only OnFailure/Always replicas count"


def test_active_deadline():
    j = job(run_policy={"activeDeadlineSeconds": 60}, Worker=(1, "Never"))
    rs = replicas(worker_0="Running")
    assert rules.update_job_status(j, rs, [], start_time=T0, now="2026-01-01T00:00:59Z").finished is None
    late = rules.update_job_status(j, rs, [], start_time=T0, now="2026-01-01T00:01:00Z")
    assert late.finished == "Failed"
    assert "active longer than specified deadline" in late.conditions[-1].message


def test_suspend():
    j = job(run_policy={"suspend": True}, Worker=(1, "Never"))
    update = rules.update_job_status(j, replicas(worker_0="Pending"), rules.created_condition(j, T0))
    assert update.conditions[-1].type == "Suspended" and update.finished is None


@pytest.mark.parametrize(
    "policy,expected", [("None", []), ("Running", ["worker-1", "ps-0"]), ("All", ["worker-0", "worker-1", "ps-0"])]
)
def test_clean_pod_policy(policy, expected):
    j = job(run_policy={"cleanPodPolicy": policy}, **WORKERS_ONLY)
    rs = replicas(worker_0="Succeeded", worker_1="Running", ps_0="Running")
    assert [r.id for r in rules.replicas_to_stop(j, rs)] == expected


def test_replica_statuses_count_phases():
    j = job(**CHIEF_JOB)
    counts = rules.replica_statuses(
        j, replicas(chief_0="Running", worker_0="Succeeded", worker_1="Failed", ps_0="Pending")
    )
    assert counts == {
        "Chief": {"active": 1, "succeeded": 0, "failed": 0},
        "PS": {"active": 0, "succeeded": 0, "failed": 0},
        "Worker": {"active": 0, "succeeded": 1, "failed": 1},
    }


def test_set_condition_keeps_transition_time_when_status_unchanged():
    c1 = rules.set_condition([], "Running", "TFJobRunning", "a", now=T0)
    c2 = rules.set_condition(c1, "Running", "TFJobRunning", "b", now="2026-01-01T00:05:00Z")
    assert c2[0].lastTransitionTime == T0 and c2[0].lastUpdateTime == "2026-01-01T00:05:00Z"
    assert rules.set_condition(c2, "Running", "TFJobRunning", "b", now="2026-01-02T00:00:00Z") == c2


# -- TF_CONFIG -------------------------------------------------------------------------


def local(rtype, index):
    return (
        f"localhost:{ {'Master': 1000, 'Worker': 2000, 'PS': 3000, 'Chief': 4000, 'Evaluator': 5000}[rtype] + index }"
    )


def test_tf_config_for_the_seed_job_matches_the_operator_byte_for_byte():
    seed = job(Master=(1, "OnFailure"), Worker=(1, "OnFailure"), PS=(2, "Never"))
    from kubeflow_jupyter.tfjob import cluster_dns_resolver

    assert tf_config_json(seed, "PS", 1, cluster_dns_resolver(seed)) == (
        '{"cluster":{"master":["j-master-0.default.svc:2222"],"ps":["j-ps-0.default.svc:2222",'
        '"j-ps-1.default.svc:2222"],"worker":["j-worker-0.default.svc:2222"]},'
        '"task":{"type":"ps","index":1},"environment":"cloud"}'
    )


def test_tf_config_local_hosts_and_all_types():
    j = job(Chief=(1, "Never"), Evaluator=(1, "Never"), Worker=(2, "Never"), PS=(1, "Never"))
    cfg = tf_config(j, "Worker", 1, local)
    assert cfg == {
        "cluster": {
            "chief": ["localhost:4000"],
            "evaluator": ["localhost:5000"],
            "ps": ["localhost:3000"],
            "worker": ["localhost:2000", "localhost:2001"],
        },
        "task": {"type": "worker", "index": 1},
        "environment": "cloud",
    }
    assert list(json.loads(tf_config_json(j, "Chief", 0, local))) == ["cluster", "task", "environment"]


def test_tf_config_omitted_for_a_single_replica():
    assert tf_config(job(Worker=(1, "Never")), "Worker", 0, local) is None
    assert tf_config(job(Worker=(2, "Never")), "Worker", 0, local) is not None


def test_snapshot_round_trip():
    snap = JobSnapshot(
        name="j",
        conditions=[Condition("Created", "True", "TFJobCreated", "m", T0, T0)],
        replica_statuses={"Worker": {"active": 1, "succeeded": 0, "failed": 0}},
        start_time=T0,
        replicas=[ReplicaState("Worker", 0, "Running", restarts=2)],
    )
    again = JobSnapshot.from_dict(json.loads(json.dumps(snap.to_dict())))
    assert again == snap and again.to_dict()["replicas"][0]["id"] == "worker-0"


def test_restarting_worker_with_a_running_chief_does_not_fail_the_job():
    # The chief's Running condition replaces Restarting in the same pass; the failed
    # worker being recreated must still count as restarting (the operator remembers it).
    j = job(Chief=(1, "ExitCode"), Worker=(1, "ExitCode"))
    conds = rules.created_condition(j, T0)
    update = rules.update_job_status(j, replicas(chief_0="Running", worker_0="Failed"), conds, restarting=["worker-0"])
    assert update.finished is None
    assert update.conditions[-1].type == "Restarting"


# -- Restarting: while a replica waits to be started again ---------------------------------
# (name, job, replica phases, replicas waiting to run again, expected finished, expected
#  conditions that are True, the Restarting message or None)
RESTART_MSG = f"TFJob {DEFAULT_NAMESPACE}/j is restarting because {{}} replica(s) failed."
RESTARTING_SCENARIOS = [
    (
        "OnFailure worker restarting in place",
        dict(Worker=(1, "OnFailure")),
        dict(worker_0="Running"),
        ["worker-0"],
        None,
        ["Created", "Restarting"],
        RESTART_MSG.format("1 Worker"),
    ),
    (
        "a running chief does not drop it",
        dict(Chief=(1, "OnFailure"), Worker=(2, "OnFailure")),
        dict(chief_0="Running", worker_0="Running", worker_1="Running"),
        ["worker-1"],
        None,
        ["Created", "Restarting"],
        RESTART_MSG.format("1 Worker"),
    ),
    (
        "Always chief",
        dict(Chief=(1, "Always"), Worker=(1, "Never")),
        dict(chief_0="Running", worker_0="Running"),
        ["chief-0"],
        None,
        ["Created", "Restarting"],
        RESTART_MSG.format("1 Chief"),
    ),
    (
        "ExitCode worker recreated (Pending)",
        dict(Chief=(1, "ExitCode"), Worker=(1, "ExitCode")),
        dict(chief_0="Running", worker_0="Pending"),
        ["worker-0"],
        None,
        ["Created", "Restarting"],
        RESTART_MSG.format("1 Worker"),
    ),
    (
        "ExitCode pod still Failed before it is recreated",
        dict(Worker=(1, "ExitCode"), PS=(1, "ExitCode")),
        dict(worker_0="Failed", ps_0="Running"),
        ["worker-0"],
        None,
        ["Created", "Restarting"],
        RESTART_MSG.format("1 Worker"),
    ),
    (
        "two types at once",
        dict(Master=(1, "OnFailure"), Worker=(2, "OnFailure"), PS=(1, "OnFailure")),
        dict(master_0="Running", worker_0="Running", worker_1="Running", ps_0="Running"),
        ["ps-0", "worker-0", "worker-1"],
        None,
        ["Created", "Restarting"],
        RESTART_MSG.format("1 PS and 2 Worker"),
    ),
    (
        "none waiting: Running",
        dict(Chief=(1, "OnFailure"), Worker=(1, "OnFailure")),
        dict(chief_0="Running", worker_0="Running"),
        [],
        None,
        ["Created", "Running"],
        None,
    ),
    (
        "the chief's success wins",
        dict(Chief=(1, "OnFailure"), Worker=(1, "OnFailure")),
        dict(chief_0="Succeeded", worker_0="Running"),
        ["worker-0"],
        "Succeeded",
        ["Created", "Succeeded"],
        None,
    ),
    (
        "worker 0's success wins",
        dict(Worker=(2, "OnFailure")),
        dict(worker_0="Succeeded", worker_1="Running"),
        ["worker-1"],
        "Succeeded",
        ["Created", "Succeeded"],
        None,
    ),
    (
        "a failure that is not restarted wins",
        dict(Worker=(2, "ExitCode"), PS=(1, "Never")),
        dict(worker_0="Pending", worker_1="Running", ps_0="Failed"),
        ["worker-0"],
        "Failed",
        ["Created", "Failed"],
        None,
    ),
    (
        "another failed worker of the same type still fails the job",
        dict(Worker=(2, "ExitCode")),
        dict(worker_0="Failed", worker_1="Failed"),
        ["worker-0"],
        "Failed",
        ["Created", "Failed"],
        None,
    ),
]


@pytest.mark.parametrize(
    "name,spec,phases,waiting,finished,true,message", RESTARTING_SCENARIOS, ids=[s[0] for s in RESTARTING_SCENARIOS]
)
def test_restarting_while_a_replica_waits_to_run_again(name, spec, phases, waiting, finished, true, message):
    j = job(**spec)
    running = rules.update_job_status(
        j,
        [ReplicaState(r.type, r.index, "Running") for r in replicas(**phases)],
        rules.created_condition(j, T0),
        now=T0,
    )
    update = rules.update_job_status(j, replicas(**phases), running.conditions, restarting=waiting, now=T0)
    assert update.finished == finished
    assert [c.type for c in update.conditions if c.status == "True"] == true
    restarting = [c for c in update.conditions if c.type == "Restarting"]
    if message:
        [c] = restarting
        assert (c.status, c.reason, c.message) == ("True", "TFJobRestarting", message)
        assert not any(c.type == "Running" for c in update.conditions), "Running and Restarting replace each other"
        assert JobSnapshot(name="j", conditions=update.conditions).state == "Restarting"
    else:
        assert not restarting
    assert not any(c.reason == "JobRestarting" for c in update.conditions)


def test_restarting_lasts_until_the_replica_runs_again_then_running_replaces_it():
    j = job(Chief=(1, "OnFailure"), Worker=(1, "OnFailure"))
    both = replicas(chief_0="Running", worker_0="Running")
    t = iter(f"2026-01-01T00:00:0{i}Z" for i in range(10))
    conds = rules.update_job_status(j, both, rules.created_condition(j, T0), now=next(t)).conditions
    assert [c.type for c in conds] == ["Created", "Running"]
    first = rules.update_job_status(j, both, conds, restarting=("worker-0",), now=next(t))
    assert [c.type for c in first.conditions] == ["Created", "Restarting"]
    # every pass while the restart is pending leaves the condition as it is (no churn)
    again = rules.update_job_status(j, both, first.conditions, restarting=("worker-0",), now=next(t))
    assert again.conditions == first.conditions
    ran = rules.update_job_status(j, both, again.conditions, now=next(t))
    assert [(c.type, c.status) for c in ran.conditions] == [("Created", "True"), ("Running", "True")]
    done = rules.update_job_status(j, replicas(chief_0="Succeeded", worker_0="Running"), ran.conditions, now=next(t))
    assert done.finished == "Succeeded"
    assert [(c.type, c.status) for c in done.conditions] == [
        ("Created", "True"),
        ("Running", "False"),
        ("Succeeded", "True"),
    ]


def test_backoff_limit_fails_a_restarting_job():
    j = job(run_policy={"backoffLimit": 1}, Worker=(1, "OnFailure"))
    rs = replicas(worker_0="Running")
    rs[0].restarts = 1
    update = rules.update_job_status(j, rs, rules.created_condition(j, T0), restarting=["worker-0"])
    assert update.finished == "Failed"
    assert not any(c.type == "Restarting" for c in update.conditions)
