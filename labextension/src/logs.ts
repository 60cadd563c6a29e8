import { TFJobAPI } from './api';

/** Most lines a log view keeps: older ones are dropped so a chatty replica cannot freeze the page. */
export const MAX_LOG_LINES = 5000;
/** How much history to load when a log is opened. */
export const INITIAL_TAIL = 1000;

export type LogState = 'loading' | 'live' | 'ended' | 'error';

/**
 * One replica's live log: the last INITIAL_TAIL lines, then every new line until
 * the replica ends (`logs/stream`, server-sent events `lines` / `end` / `error`).
 */
export class LogFollower {
  constructor(
    private readonly api: TFJobAPI,
    readonly job: string,
    readonly replica: string,
    private readonly onChange: () => void
  ) {
    void this._follow();
  }

  lines: string[] = [];
  state: LogState = 'loading';
  error = '';

  stop(): void {
    this._abort.abort();
  }

  private async _follow(): Promise<void> {
    const query = `?replica=${encodeURIComponent(this.replica)}&tail=${INITIAL_TAIL}`;
    try {
      await this.api.stream(
        ['jobs', encodeURIComponent(this.job), 'logs', 'stream'],
        query,
        event => {
          const data = JSON.parse(event.data);
          if (event.event === 'lines') {
            this.lines = this.lines
              .concat(data as string[])
              .slice(-MAX_LOG_LINES);
            this.state = 'live';
          } else if (event.event === 'end') {
            this.state = 'ended';
          } else if (event.event === 'error') {
            this.state = 'error';
            this.error = data.message;
          }
          this.onChange();
        },
        this._abort.signal
      );
      if (this.state === 'loading' || this.state === 'live') {
        this.state = 'ended';
      }
    } catch (reason) {
      if (this._abort.signal.aborted) {
        return;
      }
      this.state = 'error';
      this.error = (reason as Error).message;
    }
    this.onChange();
  }

  private _abort = new AbortController();
}
