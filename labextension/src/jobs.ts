/**
 * The job model as the server sends it, and the pure views the sidebar derives from it.
 * No JupyterLab imports here: these functions are unit-tested under plain node.
 */

export interface IReplica {
  id: string;
  type: string;
  index: number;
  phase: string;
  restarts: number;
  exit_code: number | null;
  started_at: string | null;
  finished_at: string | null;
  pod_name: string;
  message: string;
}

export interface ICounts {
  active: number;
  succeeded: number;
  failed: number;
  total: number;
}

/** What the list needs; the first `jobs` event of the push channel sends only this. */
export interface IJobSummary {
  name: string;
  namespace: string;
  backend: string;
  uid: string;
  created: string;
  state: string;
  message: string;
  resourceVersion: string;
  counts: ICounts;
}

/** A job with its details (`GET jobs/<name>` and every `job` event). */
export interface IJob extends IJobSummary {
  status: {
    conditions: {
      type: string;
      status: string;
      reason: string;
      message: string;
    }[];
    startTime?: string;
    completionTime?: string;
  };
  replicas: IReplica[];
  /** The replica whose log to show first: the server's choice (the chief/master, else worker-0). */
  defaultReplica: string | null;
}

/** Summary or full job, as the model holds them. */
export type AnyJob = IJobSummary & Partial<IJob>;

export function hasDetails(job: AnyJob): job is IJob {
  return Array.isArray(job.replicas);
}

/** The resourceVersion as a number where it is one: the local store counts each job's writes;
 * the Kubernetes API's is opaque (compared only for equality). */
function versionCounter(job: IJobSummary): number | null {
  return job.backend === 'local' && /^\d+$/.test(job.resourceVersion)
    ? Number(job.resourceVersion)
    : null;
}

/**
 * Whether `next` is a newer state of its job than `current` (the server's rule,
 * `tfjob.status.supersedes`): another uid (the job was recreated) always is; counted
 * versions must grow; opaque ones arrive in the push channel's order, which is the order.
 */
export function supersedes(
  next: IJobSummary,
  current: IJobSummary | undefined
): boolean {
  if (current === undefined || next.uid !== current.uid) {
    return true;
  }
  const a = versionCounter(next);
  const b = versionCounter(current);
  return a !== null && b !== null ? a > b : true;
}

/**
 * Whether the job a submit answered with may be shown: not when the push channel has
 * already told us about that very job (its state is newer than the answer's first one),
 * nor when that job has been deleted since.
 */
export function acceptsSubmitAnswer(
  answer: IJobSummary,
  current: IJobSummary | undefined,
  deletedUids: ReadonlySet<string>
): boolean {
  return (
    !deletedUids.has(answer.uid) &&
    (current === undefined || current.uid !== answer.uid)
  );
}

/** Whether details fetched for a listed job may replace its row: the same job, not older. */
export function acceptsDetails(
  details: IJobSummary,
  current: IJobSummary | undefined
): boolean {
  return (
    current !== undefined &&
    current.uid === details.uid &&
    (details.resourceVersion === current.resourceVersion ||
      supersedes(details, current))
  );
}

/**
 * Every job state and replica phase the server sends, and its badge (`kfj-state-<badge>` in
 * style/base.css). The vocabulary is the server's: kubeflow_jupyter/tfjob/status.py. Job states
 * are the operator's conditions, plus Pending before the first and Unknown for a job whose stored
 * state cannot be read; replica phases are a pod's, plus Stopped: ended by the local runner
 * (ENDED_PHASES there), so it is grey like job_display.py's badge, not a waiting one.
 */
export const BADGES: ReadonlyMap<string, string> = new Map([
  ['Pending', 'waiting'],
  ['Created', 'waiting'],
  ['Running', 'running'],
  ['Restarting', 'restarting'],
  ['Suspended', 'suspended'],
  ['Succeeded', 'succeeded'],
  ['Failed', 'failed'],
  ['Stopped', 'ended'],
  ['Unknown', 'unknown']
]);

/** CSS class for a job state or replica phase badge; a name the table lacks gets Pending's. */
export function stateClass(state: string): string {
  return `kfj-badge kfj-state-${BADGES.get(state) ?? 'waiting'}`;
}

/** Newest first (by creation time), then by name, like `kubectl get` sorted by age. */
export function sortJobs<T extends IJobSummary>(jobs: Iterable<T>): T[] {
  return Array.from(jobs).sort((a, b) => {
    if (a.created !== b.created) {
      return a.created < b.created ? 1 : -1;
    }
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

/** Jobs the status bar counts as running: Running or Restarting. */
export function runningCount(jobs: Iterable<IJobSummary>): number {
  let n = 0;
  for (const job of jobs) {
    if (job.state === 'Running' || job.state === 'Restarting') {
      n++;
    }
  }
  return n;
}

/**
 * kubectl's short age style: 42s, 3m12s, 15m, 2h30m, 10h, 4d. The same strings as the server's
 * `format_duration` (kubeflow_jupyter/tfjob/status.py), which the CLI and the notebook show.
 */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.trunc(seconds));
  if (s < 60) {
    return `${s}s`;
  }
  const minutes = Math.floor(s / 60);
  const secs = s % 60;
  if (minutes < 10) {
    return secs ? `${minutes}m${secs}s` : `${minutes}m`;
  }
  if (minutes < 60) {
    return `${minutes}m`;
  }
  const hours = Math.floor(minutes / 60);
  const mins = minutes % 60;
  if (hours < 24) {
    return mins && hours < 10 ? `${hours}h${mins}m` : `${hours}h`;
  }
  return `${Math.floor(hours / 24)}d`;
}

/** Time since a timestamp in `formatDuration`'s style; empty when it is missing or unreadable. */
export function formatAge(
  created: string | null | undefined,
  now: number
): string {
  if (!created) {
    return '';
  }
  const then = Date.parse(created);
  if (Number.isNaN(then)) {
    return '';
  }
  return formatDuration((now - then) / 1000);
}

/** Job states after which no replica runs again. */
export const FINISHED_STATES: ReadonlySet<string> = new Set([
  'Succeeded',
  'Failed'
]);

function replicas(n: number): string {
  return `${n} replica${n === 1 ? '' : 's'}`;
}

/**
 * The replica summary of a row, from the counts by phase. A finished job's replicas that neither
 * succeeded nor failed were stopped when it ended (the operator's success policy: the chief or
 * worker 0 succeeding ends the job), so a succeeded job reads "1 of 4 replicas ran to completion,
 * 3 stopped", not as a partial failure. `stopped` overrides the derived count where it is known.
 */
export function replicaSummary(
  counts: ICounts,
  state = '',
  stopped?: number
): string {
  const { active, succeeded, failed, total } = counts;
  const finished = FINISHED_STATES.has(state);
  const rest = stopped ?? (finished ? total - succeeded - failed - active : 0);
  const tail = rest > 0 ? `, ${rest} stopped` : '';
  if (failed > 0) {
    return `${failed} of ${replicas(total)} failed${tail}`;
  }
  if (active > 0 && !finished) {
    return `${active}/${total} active`;
  }
  if (succeeded > 0) {
    return `${succeeded} of ${replicas(total)} ran to completion${tail}`;
  }
  return finished ? `${replicas(total)}${tail}` : replicas(total);
}

/** Replicas counted by phase, for a job whose details are known. */
export function phaseCounts(list: IReplica[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of list) {
    counts.set(r.phase, (counts.get(r.phase) ?? 0) + 1);
  }
  return counts;
}

/** The detail header's line: `Succeeded · 1 of 4 replicas ran to completion, 3 stopped`. */
export function jobOutcome(job: AnyJob): string {
  const stopped = hasDetails(job)
    ? (phaseCounts(job.replicas).get('Stopped') ?? 0)
    : undefined;
  return `${job.state} · ${replicaSummary(job.counts, job.state, stopped)}`;
}

/** What a replica's Exit cell says: a Stopped replica's 143 (SIGTERM) is the runner's doing. */
export function exitText(replica: IReplica, jobState: string): string {
  if (replica.phase === 'Stopped') {
    return FINISHED_STATES.has(jobState)
      ? 'stopped when the job finished'
      : 'stopped';
  }
  return replica.exit_code === null ? '' : String(replica.exit_code);
}

export type Condition = IJob['status']['conditions'][number];

/**
 * The operator's conditions split into the current ones (status True: the job's latest state)
 * and those superseded (status False: e.g. `Running` once the job succeeded), shown on request.
 */
export function splitConditions(conditions: Condition[]): {
  current: Condition[];
  superseded: Condition[];
} {
  return {
    current: conditions.filter(c => c.status === 'True'),
    superseded: conditions.filter(c => c.status !== 'True')
  };
}

/** The delete dialog's question: a running job's replicas are stopped; a finished job has none. */
export function deleteQuestion(
  name: string,
  state: string,
  counts: ICounts
): string {
  if (FINISHED_STATES.has(state) || counts.active === 0) {
    return `Delete TFJob "${name}"? This deletes its record and logs; none of its replicas is running.`;
  }
  return `Delete TFJob "${name}" and stop its ${replicas(counts.active)} still running? Its logs are deleted too.`;
}

/** Whether a file browser item can be submitted as a TFJob. */
export function isTFJobFile(path: string): boolean {
  return /\.ya?ml$/i.test(path);
}
