import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import {
  LabIcon,
  ReactWidget,
  UseSignal,
  deleteIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import {
  AnyJob,
  IJob,
  IReplica,
  hasDetails,
  formatAge,
  replicaSummary,
  stateClass
} from './jobs';
import { MetricsPanel } from './charts';
import { LogFollower } from './logs';
import { JobsModel } from './model';

/** Ages are re-rendered this often (kubectl-style ages change by the minute). */
const AGE_TICK_MS = 15000;

export const tfjobIcon = new LabIcon({
  name: 'kubeflow-jupyter:tfjob',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M12 2 3 7v10l9 5 9-5V7zm0 2.3 6.8 3.8L12 11.8 5.2 8.1zM5 9.8l6 3.3v6.6l-6-3.3zm8 9.9v-6.6l6-3.3v6.6z"/>' +
    '</g></svg>'
});

/** The left sidebar: every TFJob with its state, replicas and age; details and live logs of the selected one. */
export class TFJobsSidebar extends ReactWidget {
  constructor(private readonly model: JobsModel) {
    super();
    this.id = 'kubeflow-jupyter-sidebar';
    this.title.icon = tfjobIcon;
    this.title.caption = 'TFJobs';
    this.addClass('kfj-sidebar');
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._markShown();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this._markShown();
    }
  }

  /** User-timing mark: the sidebar first became visible (bench/bench_sidebar.py measures from it). */
  private _markShown(): void {
    if (performance.getEntriesByName('kfj-sidebar-shown').length === 0) {
      performance.mark('kfj-sidebar-shown');
    }
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <SidebarView model={this.model} />}
      </UseSignal>
    );
  }
}

/** The body of the "Cannot submit" dialog: one line per field problem, as the server names them. */
export function SubmitProblems(props: {
  path: string;
  message: string;
  problems: { path: string; message: string }[];
}): JSX.Element {
  if (props.problems.length === 0) {
    return <div>{props.message}</div>;
  }
  return (
    <div>
      <code>{props.path}</code> is not a valid TFJob:
      <ul className="kfj-problems">
        {props.problems.map((p, i) => (
          <li key={i}>
            {p.path && <code>{p.path}</code>}
            {p.path && ': '}
            {p.message}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** Ask, then delete; the push channel removes the job from every open sidebar. */
export async function confirmAndDelete(
  model: JobsModel,
  name: string
): Promise<void> {
  const job = model.job(name);
  const replicas = job ? job.counts.total : 0;
  const result = await showDialog({
    title: 'Delete TFJob',
    body: `Delete TFJob "${name}" and stop its ${replicas} replica${replicas === 1 ? '' : 's'}? Its logs are deleted too.`,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
  });
  if (!result.button.accept) {
    return;
  }
  try {
    await model.api.deleteJob(name);
    model.remove(name);
  } catch (reason) {
    await showErrorMessage('Cannot delete TFJob', (reason as Error).message);
  }
}

function useNow(): number {
  const [now, setNow] = React.useState(Date.now());
  React.useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), AGE_TICK_MS);
    return () => clearInterval(timer);
  }, []);
  return now;
}

function SidebarView({ model }: { model: JobsModel }): JSX.Element {
  const now = useNow();
  const jobs = model.jobs;
  const selected = model.job(model.selected);
  const context =
    jobs.length > 0 ? `${jobs[0].namespace} · ${jobs[0].backend}` : '';
  return (
    <div className="kfj-panel">
      <header className="kfj-header">
        <h2 className="kfj-title">TFJobs</h2>
        <span className="kfj-context">{context}</span>
        <button
          className="jp-ToolbarButtonComponent kfj-icon-button"
          title="Refresh"
          onClick={() => model.refresh()}
        >
          <refreshIcon.react tag="span" />
        </button>
      </header>
      {model.error && <div className="kfj-error">{model.error}</div>}
      {model.connection === 'retrying' && !model.error && (
        <div className="kfj-error">
          Lost the connection to the server; retrying…
        </div>
      )}
      {!model.loaded ? (
        <div className="kfj-empty">Loading TFJobs…</div>
      ) : jobs.length === 0 ? (
        <EmptyState />
      ) : (
        <JobList jobs={jobs} model={model} now={now} />
      )}
      {selected &&
        (hasDetails(selected) ? (
          <JobDetail
            key={selected.name}
            job={selected}
            model={model}
            now={now}
          />
        ) : (
          <LoadDetails key={selected.name} name={selected.name} model={model} />
        ))}
    </div>
  );
}

/** Row height in px: fixed (see `.kfj-job` in style/base.css) so only visible rows are rendered. */
const ROW_HEIGHT = 44;
/** Rows rendered beyond each edge of the visible window, so scrolling never shows a gap. */
const OVERSCAN = 10;

/**
 * The job list, windowed: a namespace with thousands of jobs costs what ~40 rows cost,
 * both on first paint and on each change.
 */
function JobList(props: {
  jobs: AnyJob[];
  model: JobsModel;
  now: number;
}): JSX.Element {
  const { jobs, model, now } = props;
  const list = React.useRef<HTMLUListElement>(null);
  const [view, setView] = React.useState({ top: 0, height: 0 });
  const measure = (): void => {
    const el = list.current;
    if (el) {
      setView({ top: el.scrollTop, height: el.clientHeight });
    }
  };
  React.useLayoutEffect(() => {
    measure();
    const observer = new ResizeObserver(measure); // shown, hidden, resized
    observer.observe(list.current!);
    return () => observer.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(view.top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(
    jobs.length,
    Math.ceil((view.top + view.height) / ROW_HEIGHT) + OVERSCAN
  );
  return (
    <ul
      className="kfj-jobs"
      ref={list}
      onScroll={measure}
      role="listbox"
      aria-label="TFJobs"
      data-count={jobs.length}
    >
      <li
        className="kfj-spacer"
        aria-hidden="true"
        style={{ height: first * ROW_HEIGHT }}
      />
      {jobs.slice(first, last).map(job => (
        <JobRow
          key={job.name}
          job={job}
          now={now}
          selected={job.name === model.selected}
          onSelect={model.setSelected}
        />
      ))}
      <li
        className="kfj-spacer"
        aria-hidden="true"
        style={{ height: (jobs.length - last) * ROW_HEIGHT }}
      />
    </ul>
  );
}

function EmptyState(): JSX.Element {
  return (
    <div className="kfj-empty">
      <p className="kfj-empty-title">No TFJobs yet</p>
      <p>Submit one:</p>
      <ul>
        <li>
          right-click a <code>.yaml</code> file in the file browser and choose{' '}
          <b>Submit as TFJob</b>;
        </li>
        <li>
          in a notebook: <code>%load_ext kubeflow_jupyter</code>, then{' '}
          <code>%tfjob submit job.yaml</code>;
        </li>
        <li>
          in a terminal: <code>kubeflow-jupyter submit job.yaml</code>.
        </li>
      </ul>
      <p>Jobs appear here as soon as they are created, from anywhere.</p>
    </div>
  );
}

interface IJobRowProps {
  job: AnyJob;
  now: number;
  selected: boolean;
  onSelect: (name: string | null) => void;
}

/** Memoised on the job object: the push channel replaces only the jobs that changed. */
const JobRow = React.memo(function JobRow({
  job,
  now,
  selected,
  onSelect
}: IJobRowProps) {
  return (
    <li
      className={`kfj-job${selected ? ' kfj-selected' : ''}`}
      data-name={job.name}
      data-state={job.state}
      role="option"
      aria-selected={selected}
      title={job.message || job.state}
      onClick={() => onSelect(selected ? null : job.name)}
    >
      <span className="kfj-job-name">{job.name}</span>
      <span className={stateClass(job.state)}>{job.state}</span>
      <span className="kfj-job-replicas">{replicaSummary(job.counts)}</span>
      <span className="kfj-job-age">{formatAge(job.created, now)}</span>
    </li>
  );
});

/** The list holds summaries: fetch the selected job's replicas once (pushes keep them current). */
function LoadDetails({
  name,
  model
}: {
  name: string;
  model: JobsModel;
}): JSX.Element {
  const [error, setError] = React.useState('');
  React.useEffect(() => {
    model.api
      .getJob(name)
      .then(job => model.fill(job))
      .catch(reason => setError((reason as Error).message));
  }, [name]);
  return (
    <section className="kfj-detail">
      <div className={error ? 'kfj-error' : 'kfj-empty'}>
        {error || 'Loading…'}
      </div>
    </section>
  );
}

function JobDetail({
  job,
  model,
  now
}: {
  job: IJob;
  model: JobsModel;
  now: number;
}): JSX.Element {
  const [replica, setReplica] = React.useState<string | null>(
    job.defaultReplica
  );
  const shown = job.replicas.find(r => r.id === replica) ?? null;
  return (
    <section className="kfj-detail" aria-label={`TFJob ${job.name}`}>
      <header className="kfj-detail-header">
        <span className="kfj-detail-name">{job.name}</span>
        <span className={stateClass(job.state)}>{job.state}</span>
        <button
          className="jp-ToolbarButtonComponent kfj-icon-button kfj-delete"
          title={`Delete TFJob ${job.name}`}
          onClick={() => void confirmAndDelete(model, job.name)}
        >
          <deleteIcon.react tag="span" />
        </button>
      </header>
      {job.message && <div className="kfj-detail-message">{job.message}</div>}
      <div className="kfj-replicas-scroll">
        <table className="kfj-replicas">
          <thead>
            <tr>
              <th>Replica</th>
              <th>Phase</th>
              <th>Restarts</th>
              <th>Exit</th>
              <th>Age</th>
            </tr>
          </thead>
          <tbody>
            {job.replicas.map(r => (
              <ReplicaRow
                key={r.id}
                replica={r}
                now={now}
                selected={r.id === replica}
                onSelect={setReplica}
              />
            ))}
          </tbody>
        </table>
      </div>
      <MetricsPanel api={model.api} job={job.name} />
      {shown && (
        <LogView
          // Reopen the log when the replica restarts: a new process, a new log.
          key={`${shown.id}/${shown.restarts}`}
          model={model}
          job={job.name}
          replica={shown.id}
        />
      )}
    </section>
  );
}

function ReplicaRow(props: {
  replica: IReplica;
  now: number;
  selected: boolean;
  onSelect: (id: string) => void;
}): JSX.Element {
  const { replica: r, now, selected, onSelect } = props;
  return (
    <tr
      className={`kfj-replica${selected ? ' kfj-selected' : ''}`}
      data-replica={r.id}
      title={r.message || `show the log of ${r.id}`}
      onClick={() => onSelect(r.id)}
    >
      <td>{r.id}</td>
      <td>
        <span className={stateClass(r.phase)}>{r.phase}</span>
      </td>
      <td>{r.restarts}</td>
      <td>{r.exit_code ?? ''}</td>
      <td>{formatAge(r.started_at, now)}</td>
    </tr>
  );
}

function LogView({
  model,
  job,
  replica
}: {
  model: JobsModel;
  job: string;
  replica: string;
}): JSX.Element {
  const [, redraw] = React.useReducer((n: number) => n + 1, 0);
  const [follower, setFollower] = React.useState<LogFollower | null>(null);
  const pre = React.useRef<HTMLPreElement>(null);
  const pinned = React.useRef(true); // follow the end unless the user scrolled up

  React.useEffect(() => {
    const f = new LogFollower(model.api, job, replica, redraw);
    setFollower(f);
    return () => f.stop();
  }, [job, replica]);

  React.useLayoutEffect(() => {
    if (pre.current && pinned.current) {
      pre.current.scrollTop = pre.current.scrollHeight;
    }
  });

  const state = follower?.state ?? 'loading';
  const status =
    state === 'loading'
      ? 'loading…'
      : state === 'live'
        ? 'live'
        : state === 'ended'
          ? 'ended'
          : `error: ${follower?.error}`;
  return (
    <div className="kfj-log-view">
      <div className="kfj-log-header">
        <span>
          Log of <b>{replica}</b>
        </span>
        <span className={`kfj-log-state kfj-log-${state}`}>{status}</span>
      </div>
      <pre
        className="kfj-log"
        ref={pre}
        data-replica={replica}
        onScroll={e => {
          const el = e.currentTarget;
          pinned.current =
            el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
        }}
      >
        {follower?.lines.join('\n')}
      </pre>
    </div>
  );
}
