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

/** "2/3 active", "3/3 succeeded", "1 failed of 3": the replica summary of a row. */
export function replicaSummary(counts: ICounts): string {
  const { active, succeeded, failed, total } = counts;
  if (failed > 0) {
    return `${failed}/${total} failed`;
  }
  if (active > 0) {
    return `${active}/${total} active`;
  }
  if (succeeded > 0) {
    return `${succeeded}/${total} succeeded`;
  }
  return `${total} replica${total === 1 ? '' : 's'}`;
}

/** Whether a file browser item can be submitted as a TFJob. */
export function isTFJobFile(path: string): boolean {
  return /\.ya?ml$/i.test(path);
}
