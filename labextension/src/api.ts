import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IJob } from './jobs';
import { IMetricsReply } from './metrics';
import { IServerEvent, parseEvents } from './sse';
import { ISubmitPlan, ISubmitRequest } from './submit';

/** The server extension's routes live under `<base_url>/kubeflow-jupyter/api/`. */
const API_PATH = ['kubeflow-jupyter', 'api'];

/** What the server says when it refuses: `message`, plus per-field `problems` for a bad spec. */
export class APIError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly problems: { path: string; message: string }[] = []
  ) {
    super(message);
  }
}

export interface ISubmitResult {
  job: IJob;
  notices: string[];
  warnings: string[];
}

export class TFJobAPI {
  constructor(readonly settings: ServerConnection.ISettings) {}

  url(...parts: string[]): string {
    return URLExt.join(this.settings.baseUrl, ...API_PATH, ...parts);
  }

  async request<T>(
    path: string[],
    init: RequestInit = {},
    query = ''
  ): Promise<T> {
    const response = await ServerConnection.makeRequest(
      this.url(...path) + query,
      init,
      this.settings
    );
    const text = await response.text();
    let data: any = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { message: text };
      }
    }
    if (!response.ok) {
      throw new APIError(
        data?.message ?? response.statusText,
        response.status,
        data?.problems ?? []
      );
    }
    return data as T;
  }

  /** Submit a YAML file under the Jupyter root; it runs with the root as its working directory. */
  submit(request: ISubmitRequest): Promise<ISubmitResult> {
    return this.request<ISubmitResult>(['jobs'], {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...request, dry_run: false })
    });
  }

  /** What submitting `request` would run, and where: nothing is created. */
  plan(request: ISubmitRequest): Promise<ISubmitPlan> {
    return this.request<ISubmitPlan>(['jobs'], {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...request, dry_run: true })
    });
  }

  getJob(name: string): Promise<IJob> {
    return this.request<IJob>(['jobs', encodeURIComponent(name)]);
  }

  async deleteJob(name: string): Promise<void> {
    await this.request(['jobs', encodeURIComponent(name)], {
      method: 'DELETE'
    });
  }

  /**
   * The job's metrics newer than `since` (all without it); the server holds the request up to
   * `wait` seconds for a new point. `replica`: null for the result replica, `all`, or an id.
   */
  getMetrics(
    name: string,
    replica: string | null,
    since: string | null,
    wait: number,
    signal?: AbortSignal
  ): Promise<IMetricsReply> {
    const query = new URLSearchParams({ wait: String(wait) });
    if (replica) {
      query.set('replica', replica);
    }
    if (since) {
      query.set('since', since);
    }
    return this.request<IMetricsReply>(
      ['jobs', encodeURIComponent(name), 'metrics'],
      { signal },
      `?${query}`
    );
  }

  /**
   * Read a server-sent event stream until it ends or `signal` aborts.
   * Resolves when the server closes the stream; rejects on HTTP or network errors.
   */
  async stream(
    path: string[],
    query: string,
    onEvent: (event: IServerEvent) => void,
    signal: AbortSignal
  ): Promise<void> {
    const response = await ServerConnection.makeRequest(
      this.url(...path) + query,
      { signal, headers: { Accept: 'text/event-stream' } },
      this.settings
    );
    if (!response.ok || !response.body) {
      let message = response.statusText;
      try {
        message = (await response.json()).message ?? message;
      } catch {
        // not JSON: keep the status text
      }
      throw new APIError(message, response.status);
    }
    const reader = response.body
      .pipeThrough(new TextDecoderStream())
      .getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return;
      }
      const parsed = parseEvents(buffer + value);
      buffer = parsed.rest;
      parsed.events.forEach(onEvent);
    }
  }
}
