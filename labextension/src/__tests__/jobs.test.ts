import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  IJob,
  acceptsDetails,
  acceptsSubmitAnswer,
  formatAge,
  formatDuration,
  isTFJobFile,
  replicaSummary,
  runningCount,
  sortJobs,
  stateClass,
  supersedes
} from '../jobs';
import durations from './durations.json';

function job(
  name: string,
  created: string,
  state = 'Running',
  replicas: string[] = []
): IJob {
  return {
    name,
    namespace: 'default',
    backend: 'local',
    uid: '',
    created,
    state,
    message: '',
    resourceVersion: '1',
    status: { conditions: [] },
    replicas: replicas.map((id, index) => ({
      id,
      type: id.split('-')[0],
      index,
      phase: 'Running',
      restarts: 0,
      exit_code: null,
      started_at: null,
      finished_at: null,
      pod_name: '',
      message: ''
    })),
    counts: { active: 0, succeeded: 0, failed: 0, total: replicas.length },
    defaultReplica: replicas[0] ?? null
  };
}

test('jobs sort newest first, then by name', () => {
  const jobs = [
    job('b', '2026-01-01T00:00:00Z'),
    job('c', '2026-01-02T00:00:00Z'),
    job('a', '2026-01-01T00:00:00Z')
  ];
  assert.deepEqual(
    sortJobs(jobs).map(j => j.name),
    ['c', 'a', 'b']
  );
});

test('running counts Running and Restarting jobs only', () => {
  const jobs = ['Running', 'Restarting', 'Succeeded', 'Failed', 'Created'].map(
    (s, i) => job(`j${i}`, '', s)
  );
  assert.equal(runningCount(jobs), 2);
});

/** Shared with the Python side's test: both age formats must write these strings. */
const DURATIONS = durations.durations as [number, string][];

test('durations read like kubectl, as the Python side writes them', () => {
  for (const [seconds, expected] of DURATIONS) {
    assert.equal(formatDuration(seconds), expected, `${seconds}s`);
  }
});

test('ages count from the timestamp to now', () => {
  const now = Date.parse('2026-01-02T00:00:00Z');
  for (const [seconds, expected] of DURATIONS) {
    const created = new Date(now - Math.round(seconds * 1000)).toISOString();
    assert.equal(formatAge(created, now), expected, created);
  }
  assert.equal(formatAge('2026-01-01T23:56:48Z', now), '3m12s');
  assert.equal(formatAge('2026-01-02T00:00:05Z', now), '0s'); // clock skew never goes negative
  assert.equal(formatAge('', now), '');
  assert.equal(formatAge(null, now), '');
  assert.equal(formatAge('not a time', now), '');
});

test('replica summary names the most important count', () => {
  assert.equal(
    replicaSummary({ active: 2, succeeded: 0, failed: 0, total: 3 }),
    '2/3 active'
  );
  assert.equal(
    replicaSummary({ active: 1, succeeded: 1, failed: 1, total: 3 }),
    '1 of 3 replicas failed'
  );
  assert.equal(
    replicaSummary({ active: 0, succeeded: 3, failed: 0, total: 3 }),
    '3 of 3 replicas ran to completion'
  );
  assert.equal(
    replicaSummary({ active: 0, succeeded: 0, failed: 0, total: 1 }),
    '1 replica'
  );
});

test('badges: Stopped has ended (grey), names the table lacks wait like Pending', () => {
  assert.equal(stateClass('Succeeded'), 'kfj-badge kfj-state-succeeded');
  assert.equal(stateClass('Stopped'), 'kfj-badge kfj-state-ended');
  assert.equal(stateClass('Created'), stateClass('Pending'));
  assert.equal(stateClass('Evicted'), 'kfj-badge kfj-state-waiting');
  assert.equal(stateClass('constructor'), 'kfj-badge kfj-state-waiting');
});

test('only .yaml / .yml files can be submitted', () => {
  assert.ok(isTFJobFile('jobs/train.yaml'));
  assert.ok(isTFJobFile('JOB.YML'));
  assert.ok(!isTFJobFile('notes.yaml.txt'));
  assert.ok(!isTFJobFile('train.py'));
});

function version(
  state: string,
  resourceVersion: string,
  uid = 'u1',
  backend = 'local'
): IJob {
  return {
    ...job('a', '2026-01-01T00:00:00Z', state),
    uid,
    resourceVersion,
    backend
  };
}

test('a newer state supersedes: counted versions numerically, a new uid always, opaque ones in order', () => {
  assert.ok(supersedes(version('Running', '10'), version('Created', '9')));
  assert.ok(!supersedes(version('Created', '9'), version('Running', '10')));
  assert.ok(!supersedes(version('Running', '3'), version('Running', '3')));
  assert.ok(
    supersedes(version('Created', '1', 'u2'), version('Succeeded', '7'))
  );
  assert.ok(
    supersedes(
      version('Running', '5', 'u1', 'kubernetes'),
      version('Running', '9', 'u1', 'kubernetes')
    )
  );
  assert.ok(supersedes(version('Created', '1'), undefined));
});

test("a submit's answer arriving after the push channel's newer states is not shown", () => {
  const pushed = version('Succeeded', '3');
  const answer = version('Created', '1');
  assert.ok(!acceptsSubmitAnswer(answer, pushed, new Set()));
  assert.ok(acceptsSubmitAnswer(answer, undefined, new Set()));
  assert.ok(!acceptsSubmitAnswer(answer, undefined, new Set(['u1']))); // deleted meanwhile
  assert.ok(
    acceptsSubmitAnswer(answer, version('Succeeded', '9', 'old-uid'), new Set())
  );
});

test('fetched details replace a listed row only when they are not older', () => {
  assert.ok(acceptsDetails(version('Running', '4'), version('Running', '4')));
  assert.ok(acceptsDetails(version('Succeeded', '5'), version('Running', '4')));
  assert.ok(!acceptsDetails(version('Created', '1'), version('Running', '4')));
  assert.ok(
    !acceptsDetails(version('Running', '4', 'other'), version('Running', '4'))
  );
});
