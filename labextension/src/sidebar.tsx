import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import {
  LabIcon,
  ReactWidget,
  closeIcon,
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
  deleteQuestion,
  exitText,
  hasDetails,
  formatAge,
  jobOutcome,
  replicaSummary,
  splitConditions,
  stateClass
} from './jobs';
import { MetricsPanel } from './charts';
import { IFold, foldLog, foldMarker } from './logfold';
import { LogFollower } from './logs';
import { JobsModel } from './model';

/** Ages tick every second (ages under a minute change each second). */
const AGE_TICK_MS = 1000;

/**
 * One timer for every age on the page: each `<Age>` re-renders only its own text on a tick,
 * so the list rows, the replica table and the log are not re-rendered every second.
 */
class AgeClock {
  subscribe(listener: () => void): () => void {
    this._listeners.add(listener);
    if (this._timer === null) {
      this._timer = setInterval(
        () => this._listeners.forEach(l => l()),
        AGE_TICK_MS
      );
    }
    return () => {
      this._listeners.delete(listener);
      if (this._listeners.size === 0 && this._timer !== null) {
        clearInterval(this._timer);
        this._timer = null;
      }
    };
  }

  private _listeners = new Set<() => void>();
  private _timer: ReturnType<typeof setInterval> | null = null;
}

const ageClock = new AgeClock();

/** Time since `since`, kubectl style, kept current by the shared clock. */
function Age(props: {
  since: string | null | undefined;
  className?: string;
}): JSX.Element {
  const [, tick] = React.useReducer((n: number) => n + 1, 0);
  React.useEffect(() => ageClock.subscribe(tick), []);
  return (
    <span className={props.className}>
      {formatAge(props.since, Date.now())}
    </span>
  );
}

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
  const counts = job?.counts ?? {
    active: 0,
    succeeded: 0,
    failed: 0,
    total: 0
  };
  const result = await showDialog({
    title: 'Delete TFJob',
    body: deleteQuestion(name, job?.state ?? '', counts),
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

function SidebarView({ model }: { model: JobsModel }): JSX.Element {
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
        <JobList jobs={jobs} model={model} />
      )}
      {selected &&
        (hasDetails(selected) ? (
          <JobDetail key={selected.name} job={selected} model={model} />
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
function JobList(props: { jobs: AnyJob[]; model: JobsModel }): JSX.Element {
  const { jobs, model } = props;
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
  selected: boolean;
  onSelect: (name: string | null) => void;
}

/** Memoised on the job object: the push channel replaces only the jobs that changed. */
const JobRow = React.memo(function JobRow({
  job,
  selected,
  onSelect
}: IJobRowProps) {
  const summary = replicaSummary(job.counts, job.state);
  return (
    <li
      className={`kfj-job${selected ? ' kfj-selected' : ''}`}
      data-name={job.name}
      data-state={job.state}
      role="option"
      aria-selected={selected}
      title={`${job.state} · ${summary}${job.message ? `\n${job.message}` : ''}`}
      // Selecting is all a click does: the details close with their own button.
      onClick={() => onSelect(job.name)}
    >
      <span className="kfj-job-name">{job.name}</span>
      <span className={stateClass(job.state)}>{job.state}</span>
      <span className="kfj-job-replicas">{summary}</span>
      <Age className="kfj-job-age" since={job.created} />
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
  model
}: {
  job: IJob;
  model: JobsModel;
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
        <button
          className="jp-ToolbarButtonComponent kfj-icon-button kfj-collapse"
          title="Close the details"
          aria-label="Close the details"
          onClick={() => model.setSelected(null)}
        >
          <closeIcon.react tag="span" />
        </button>
      </header>
      <div className="kfj-detail-outcome">{jobOutcome(job)}</div>
      {job.message && <div className="kfj-detail-message">{job.message}</div>}
      <Conditions job={job} />
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
                jobState={job.state}
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

/** The operator's current conditions; the superseded ones (status False) on request. */
function Conditions({ job }: { job: IJob }): JSX.Element | null {
  const [expanded, setExpanded] = React.useState(false);
  const { current, superseded } = splitConditions(job.status.conditions);
  if (current.length + superseded.length === 0) {
    return null;
  }
  const shown = expanded ? job.status.conditions : current;
  return (
    <div className="kfj-conditions">
      <ul>
        {shown.map(c => (
          <li
            key={c.type}
            className={c.status === 'True' ? '' : 'kfj-superseded'}
            title={c.message}
          >
            <span className="kfj-condition-type">{c.type}</span>
            {c.status === 'True' ? '' : ` (${c.status})`}
            {c.reason ? ` · ${c.reason}` : ''}
          </li>
        ))}
      </ul>
      {superseded.length > 0 && (
        <button
          className="kfj-link-button kfj-conditions-toggle"
          onClick={() => setExpanded(!expanded)}
        >
          {expanded
            ? 'hide earlier conditions'
            : `${superseded.length} earlier condition${superseded.length === 1 ? '' : 's'}`}
        </button>
      )}
    </div>
  );
}

function ReplicaRow(props: {
  replica: IReplica;
  jobState: string;
  selected: boolean;
  onSelect: (id: string) => void;
}): JSX.Element {
  const { replica: r, jobState, selected, onSelect } = props;
  const exit = exitText(r, jobState);
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
      <td
        className={r.phase === 'Stopped' ? 'kfj-exit-stopped' : ''}
        title={r.exit_code === null ? undefined : `exit code ${r.exit_code}`}
      >
        {exit}
      </td>
      <td>
        <Age since={r.started_at} />
      </td>
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
  // Lines are shown as written (no wrapping inside words, tables keep their columns): scroll sideways.
  const [wrap, setWrap] = React.useState(false);

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
  const lines = follower?.lines ?? [];
  const items = React.useMemo(() => foldLog(lines), [lines]);
  return (
    <div className="kfj-log-view">
      <div className="kfj-log-header">
        <span>
          Log of <b>{replica}</b>
        </span>
        <label className="kfj-log-wrap" title="Wrap long lines">
          <input
            type="checkbox"
            checked={wrap}
            onChange={e => setWrap(e.currentTarget.checked)}
          />
          wrap
        </label>
        <span className={`kfj-log-state kfj-log-${state}`}>{status}</span>
      </div>
      <pre
        className={`kfj-log${wrap ? ' kfj-log-wrapped' : ''}`}
        ref={pre}
        data-replica={replica}
        onScroll={e => {
          const el = e.currentTarget;
          pinned.current =
            el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
        }}
      >
        {items.map((item, i) =>
          typeof item === 'string' ? (
            // A text run between folds ends its line itself; the last one needs no newline.
            <React.Fragment key={`t${i}`}>
              {item}
              {i < items.length - 1 ? '\n' : ''}
            </React.Fragment>
          ) : (
            <Fold key={`f${item.start}`} fold={item} />
          )
        )}
      </pre>
    </div>
  );
}

/** A run of TensorFlow start-up lines: one dim row that shows them on click. */
function Fold({ fold }: { fold: IFold }): JSX.Element {
  return (
    <details className="kfj-fold">
      <summary title="TensorFlow's C++ start-up lines: click to show them">
        {foldMarker(fold)}
      </summary>
      {fold.lines.join('\n')}
    </details>
  );
}
