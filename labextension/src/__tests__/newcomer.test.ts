import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import {
  IJob,
  IReplica,
  deleteQuestion,
  exitText,
  jobOutcome,
  replicaSummary,
  splitConditions
} from '../jobs';
import { IFold, foldLog, foldMarker, isStartupLine } from '../logfold';
import {
  ISubmitPlan,
  initialCommand,
  needsCommand,
  replicasText,
  submitRequest,
  unknownFieldsOnly
} from '../submit';

function replica(id: string, phase: string, exit: number | null): IReplica {
  return {
    id,
    type: id.split('-')[0],
    index: Number(id.split('-')[1]),
    phase,
    restarts: 0,
    exit_code: exit,
    started_at: null,
    finished_at: null,
    pod_name: '',
    message: ''
  };
}

function finishedJob(state: string, phases: [string, string][]): IJob {
  const list = phases.map(([id, phase]) =>
    replica(id, phase, phase === 'Stopped' ? 143 : 0)
  );
  const count = (p: string): number => list.filter(r => r.phase === p).length;
  return {
    name: 'j',
    namespace: 'default',
    backend: 'local',
    uid: 'u',
    created: '2026-01-01T00:00:00Z',
    state,
    message: '',
    resourceVersion: '1',
    status: { conditions: [] },
    replicas: list,
    counts: {
      active: count('Running'),
      succeeded: count('Succeeded'),
      failed: count('Failed'),
      total: list.length
    },
    defaultReplica: list[0].id
  };
}

test('a succeeded job says how many ran to completion and how many were stopped', () => {
  const job = finishedJob('Succeeded', [
    ['master-0', 'Succeeded'],
    ['worker-0', 'Stopped'],
    ['ps-0', 'Stopped'],
    ['ps-1', 'Stopped']
  ]);
  assert.equal(
    jobOutcome(job),
    'Succeeded · 1 of 4 replicas ran to completion, 3 stopped'
  );
  // The list has only counts: the stopped ones are those neither succeeded nor failed.
  assert.equal(
    replicaSummary(job.counts, 'Succeeded'),
    '1 of 4 replicas ran to completion, 3 stopped'
  );
  assert.equal(
    replicaSummary(
      { active: 0, succeeded: 1, failed: 0, total: 1 },
      'Succeeded'
    ),
    '1 of 1 replica ran to completion'
  );
  assert.equal(
    replicaSummary({ active: 0, succeeded: 0, failed: 1, total: 3 }, 'Failed'),
    '1 of 3 replicas failed, 2 stopped'
  );
  assert.equal(
    replicaSummary({ active: 2, succeeded: 0, failed: 0, total: 3 }, 'Running'),
    '2/3 active'
  );
  assert.equal(
    replicaSummary({ active: 0, succeeded: 0, failed: 0, total: 2 }, 'Created'),
    '2 replicas'
  );
});

test('a stopped replica says it was stopped when the job finished, not 143', () => {
  const stopped = replica('worker-0', 'Stopped', 143);
  assert.equal(exitText(stopped, 'Succeeded'), 'stopped when the job finished');
  assert.equal(exitText(stopped, 'Running'), 'stopped');
  assert.equal(exitText(replica('master-0', 'Succeeded', 0), 'Succeeded'), '0');
  assert.equal(exitText(replica('master-0', 'Running', null), 'Running'), '');
});

test('conditions: the current ones, the superseded ones apart', () => {
  const c = (type: string, status: string) => ({
    type,
    status,
    reason: '',
    message: ''
  });
  const { current, superseded } = splitConditions([
    c('Created', 'True'),
    c('Running', 'False'),
    c('Succeeded', 'True')
  ]);
  assert.deepEqual(
    current.map(x => x.type),
    ['Created', 'Succeeded']
  );
  assert.deepEqual(
    superseded.map(x => x.type),
    ['Running']
  );
});

test('the delete question: a finished job loses its record and logs, a running one its replicas', () => {
  const counts = { active: 0, succeeded: 1, failed: 0, total: 4 };
  const finished = deleteQuestion('j', 'Succeeded', counts);
  assert.match(finished, /delete.* its record and logs/i);
  assert.doesNotMatch(finished, /stop its/);
  const running = deleteQuestion('j', 'Running', {
    active: 3,
    succeeded: 0,
    failed: 0,
    total: 3
  });
  assert.match(running, /stop its 3 replicas/);
});

const SAMPLE = readFileSync(
  join(__dirname, '..', '..', 'src', '__tests__', 'tf_startup_sample.log'),
  'utf8'
)
  .split('\n')
  .filter(line => line !== '');

test('TensorFlow start-up lines are recognised, the program’s own lines are not', () => {
  assert.equal(isStartupLine(SAMPLE[0]), true);
  assert.equal(isStartupLine('step=2 loss=0.0370'), false);
  assert.equal(isStartupLine('WARNING: something else entirely'), false);
  // What tests/lab/test_lab_newcomer.py compares with kubeflow_jupyter/logfold.py.
  if (process.env.KFJ_PRINT_STARTUP_CLASSIFICATION) {
    console.log(
      'KFJ-CLASSIFICATION ' + JSON.stringify(SAMPLE.map(isStartupLine))
    );
  }
});

test('a run of start-up lines folds into one marker; the lines stay as they were', () => {
  const lines = ['hello', ...SAMPLE.slice(0, 3), 'step=1 loss=0.5', SAMPLE[3]];
  const items = foldLog(lines);
  assert.equal(items.length, 4);
  assert.equal(items[0], 'hello');
  const fold = items[1] as IFold;
  assert.equal(fold.start, 1);
  assert.deepEqual(fold.lines, SAMPLE.slice(0, 3));
  assert.equal(foldMarker(fold), 'TensorFlow start-up messages (3 lines)');
  assert.equal(items[2], 'step=1 loss=0.5');
  assert.equal(
    foldMarker(items[3] as IFold),
    'TensorFlow start-up messages (1 line)'
  );
  assert.deepEqual(foldLog(['a', 'b']), ['a\nb']);
  assert.deepEqual(foldLog([]), []);
});

const PLAN: ISubmitPlan = {
  dryRun: true,
  name: 'example-job',
  replicas: { Master: 1, Worker: 1, PS: 2 },
  workdir: '/home/me/work',
  entrypoint: ['Master', 'Worker'],
  suggestedCommand: 'python examples/tf_sample/tf_sample.py',
  problems: [
    {
      path: 'spec.tfReplicaSpecs.Master.template.spec.containers[tensorflow].command',
      message: "the local backend cannot run an image's entrypoint"
    }
  ],
  message: '',
  notices: [],
  warnings: []
};

test('the submit dialog: replicas by type, command prefilled only for an image entrypoint', () => {
  assert.equal(replicasText(PLAN.replicas), '1 Master, 1 Worker, 2 PS');
  assert.equal(initialCommand(PLAN), 'python examples/tf_sample/tf_sample.py');
  assert.equal(needsCommand(PLAN), true);
  const own = { ...PLAN, entrypoint: [], problems: [], suggestedCommand: null };
  assert.equal(initialCommand(own), '');
  assert.equal(needsCommand(own), false);
  assert.equal(
    initialCommand({ ...PLAN, suggestedCommand: null }),
    '',
    'no guess: the field stays empty, its placeholder shows the form'
  );
});

test('the submit request: the command only when given, validate only when not strict', () => {
  assert.deepEqual(submitRequest('a.yaml', ''), { path: 'a.yaml' });
  assert.deepEqual(submitRequest('a.yaml', '  python x.py '), {
    path: 'a.yaml',
    command: 'python x.py'
  });
  assert.deepEqual(submitRequest('a.yaml', '', 'warn'), {
    path: 'a.yaml',
    validate: 'warn'
  });
});

test('dropping unknown fields is offered only when they are all that is wrong', () => {
  const unknown = {
    path: 'spec.tfReplicaSpecs.Worker.replcas',
    message:
      "unknown field (did you mean 'replicas'?): fix it, or submit with --validate=warn to drop it"
  };
  assert.deepEqual(unknownFieldsOnly([unknown]), [unknown.path]);
  assert.deepEqual(
    unknownFieldsOnly([unknown, { path: 'spec', message: 'required' }]),
    []
  );
  assert.deepEqual(unknownFieldsOnly([]), []);
});
