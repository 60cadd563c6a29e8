import { ISignal, Signal } from '@lumino/signaling';

import { TFJobAPI } from './api';
import {
  AnyJob,
  IJob,
  acceptsDetails,
  acceptsSubmitAnswer,
  hasDetails,
  runningCount,
  sortJobs
} from './jobs';
import { IServerEvent } from './sse';

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;

export type Connection = 'connecting' | 'live' | 'retrying';

/**
 * Every TFJob of the namespace, kept current by the server's push channel
 * (`events`: one `jobs` event with all jobs, then `job` / `deleted` per change).
 * One instance per Lab page, shared by the sidebar and the status bar item.
 */
export class JobsModel {
  constructor(readonly api: TFJobAPI) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Jobs newest first; recomputed lazily after a change. */
  get jobs(): AnyJob[] {
    if (this._sorted === null) {
      this._sorted = sortJobs(this._jobs.values());
    }
    return this._sorted;
  }

  get loaded(): boolean {
    return this._loaded;
  }

  get connection(): Connection {
    return this._connection;
  }

  /** The last error the server reported (watch failure, unreachable cluster), if any. */
  get error(): string {
    return this._error;
  }

  get running(): number {
    return runningCount(this._jobs.values());
  }

  get selected(): string | null {
    return this._selected;
  }

  set selected(name: string | null) {
    if (name !== this._selected) {
      this._selected = name;
      this._changed.emit();
    }
  }

  /** Stable callback for rows (keeps memoised rows from re-rendering). */
  readonly setSelected = (name: string | null): void => {
    this.selected = name;
  };

  job(name: string | null): AnyJob | undefined {
    return name === null ? undefined : this._jobs.get(name);
  }

  /** Show a job a submit just created, unless the push channel already said newer about it. */
  upsert(job: IJob): void {
    if (acceptsSubmitAnswer(job, this._jobs.get(job.name), this._deletedUids)) {
      this._set(job);
    }
  }

  /** Details fetched for a job the list only had a summary of (a newer push wins). */
  fill(job: IJob): void {
    const current = this._jobs.get(job.name);
    if (current && !hasDetails(current) && acceptsDetails(job, current)) {
      this._set(job);
    }
  }

  private _set(job: IJob): void {
    this._jobs.set(job.name, job);
    this._sorted = null;
    this._changed.emit();
  }

  remove(name: string): void {
    if (this._jobs.delete(name)) {
      this._sorted = null;
      if (this._selected === name) {
        this._selected = null;
      }
      this._changed.emit();
    }
  }

  /** Open the push channel and keep it open (reconnecting with backoff) until disposed. */
  start(): void {
    if (this._abort === null) {
      void this._run();
    }
  }

  dispose(): void {
    this._abort?.abort();
    this._abort = null;
    Signal.clearData(this);
  }

  /** Re-read everything: close the channel; the reconnect starts with a full `jobs` event. */
  refresh(): void {
    this._abort?.abort();
    this._abort = null;
    this.start();
  }

  private async _run(): Promise<void> {
    const abort = new AbortController();
    this._abort = abort;
    let delay = RETRY_MIN_MS;
    while (!abort.signal.aborted) {
      this._setConnection('connecting');
      // User-timing marks (DevTools "Timings", bench/bench_sidebar.py): channel opened, first data.
      performance.mark('kfj-events-open');
      try {
        await this.api.stream(
          ['events'],
          '',
          e => this._apply(e),
          abort.signal
        );
        delay = RETRY_MIN_MS;
      } catch (reason) {
        if (abort.signal.aborted) {
          return;
        }
        this._error = `cannot reach the TFJob API: ${(reason as Error).message}`;
      }
      if (abort.signal.aborted) {
        return;
      }
      this._setConnection('retrying');
      await new Promise(resolve => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  }

  private _apply(event: IServerEvent): void {
    const data = JSON.parse(event.data);
    switch (event.event) {
      case 'jobs':
        this._jobs = new Map((data.jobs as AnyJob[]).map(j => [j.name, j]));
        if (this._selected !== null && !this._jobs.has(this._selected)) {
          this._selected = null;
        }
        if (!this._loaded) {
          performance.mark('kfj-jobs-received');
        }
        this._loaded = true;
        this._connection = 'live';
        this._error = '';
        break;
      case 'job':
        this._jobs.set(data.name, data as IJob);
        this._error = '';
        break;
      case 'deleted': {
        const gone = this._jobs.get(data.name);
        if (gone) {
          this._deletedUids.add(gone.uid); // a late submit answer must not bring it back
        }
        this._jobs.delete(data.name);
        if (this._selected === data.name) {
          this._selected = null;
        }
        break;
      }
      case 'error':
        this._error = data.message;
        break;
      default:
        return;
    }
    this._sorted = null;
    this._changed.emit();
  }

  private _setConnection(connection: Connection): void {
    if (connection !== this._connection) {
      this._connection = connection;
      this._changed.emit();
    }
  }

  private _jobs = new Map<string, AnyJob>();
  private _deletedUids = new Set<string>();
  private _sorted: AnyJob[] | null = null;
  private _loaded = false;
  private _connection: Connection = 'connecting';
  private _error = '';
  private _selected: string | null = null;
  private _abort: AbortController | null = null;
  private _changed = new Signal<this, void>(this);
}
