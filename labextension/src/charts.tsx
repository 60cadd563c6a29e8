import * as React from 'react';
import uPlot from 'uplot';

import { TFJobAPI } from './api';
import {
  Goal,
  ISeries,
  MetricsData,
  alignedData,
  formatValue,
  lastAndBest
} from './metrics';

/** Seconds the server may hold one metrics request open waiting for a new point (a long poll). */
export const METRICS_WAIT_SECONDS = 25;
/** After a failed request, wait this long before asking again. */
const RETRY_MS = 3000;
const CHART_HEIGHT = 110;
/** Line colours per replica, from JupyterLab's theme so they read in light and dark themes. */
const REPLICA_COLORS = [
  '--jp-brand-color1',
  '--jp-warn-color1',
  '--jp-success-color1',
  '--jp-error-color1',
  '--jp-accent-color1'
];

/**
 * Keeps a MetricsData current: long polls `jobs/<name>/metrics` with its cursor until the job's
 * logs end (`live: false`) or `stop()`.
 */
export class MetricsPoller {
  readonly data = new MetricsData();
  error = '';

  constructor(
    private readonly api: TFJobAPI,
    readonly job: string,
    readonly replica: string | null,
    private readonly onChange: () => void
  ) {
    void this._poll();
  }

  stop(): void {
    this._abort.abort();
  }

  private async _poll(): Promise<void> {
    const signal = this._abort.signal;
    while (!signal.aborted) {
      try {
        const reply = await this.api.getMetrics(
          this.job,
          this.replica,
          this.data.cursor,
          METRICS_WAIT_SECONDS,
          signal
        );
        const hadError = this.error !== '';
        this.error = '';
        if (this.data.apply(reply) || hadError) {
          this.onChange();
        }
        if (!reply.live) {
          return;
        }
      } catch (reason) {
        if (signal.aborted) {
          return;
        }
        this.error = (reason as Error).message;
        this.onChange();
        await new Promise(resolve => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  private _abort = new AbortController();
}

function cssVar(name: string, fallback: string): string {
  return (
    getComputedStyle(document.body).getPropertyValue(name).trim() || fallback
  );
}

/** A counter that changes when JupyterLab's theme does (uPlot draws on a canvas: colours are read once). */
function useThemeVersion(): number {
  const [version, setVersion] = React.useState(0);
  React.useEffect(() => {
    const observer = new MutationObserver(() => setVersion(v => v + 1));
    observer.observe(document.body, {
      attributes: true,
      attributeFilter: ['data-jp-theme-light', 'data-jp-theme-name']
    });
    return () => observer.disconnect();
  }, []);
  return version;
}

/** Every metric of a job as small line charts, one per metric, live while the job's logs go on. */
export function MetricsPanel(props: {
  api: TFJobAPI;
  job: string;
  replica?: string | null;
}): JSX.Element | null {
  const [, redraw] = React.useReducer((n: number) => n + 1, 0);
  const [poller, setPoller] = React.useState<MetricsPoller | null>(null);
  const theme = useThemeVersion();
  React.useEffect(() => {
    const p = new MetricsPoller(
      props.api,
      props.job,
      props.replica ?? null,
      redraw
    );
    setPoller(p);
    return () => p.stop();
  }, [props.job, props.replica]);

  if (!poller) {
    return null;
  }
  const data = poller.data;
  const metrics = Array.from(data.series.entries());
  return (
    <div className="kfj-metrics" data-job={props.job}>
      <div className="kfj-metrics-header">
        <span>Metrics</span>
        <span
          className={`kfj-metrics-state kfj-metrics-${data.live ? 'live' : 'ended'}`}
        >
          {poller.error
            ? `error: ${poller.error}`
            : data.live
              ? 'live'
              : 'ended'}
        </span>
      </div>
      {metrics.length === 0 ? (
        <div className="kfj-metrics-empty">
          {data.live
            ? 'No metrics yet: lines like "step=3 loss=0.25" in the log (kubeflow_jupyter.metrics.report) are drawn here.'
            : 'This job logged no metrics (lines like "step=3 loss=0.25").'}
        </div>
      ) : (
        <div className="kfj-metrics-charts">
          {metrics.map(([metric, replicas]) => (
            <MetricChart
              key={`${metric}/${theme}`}
              metric={metric}
              replicas={replicas}
              goal={data.goal(metric)}
            />
          ))}
        </div>
      )}
    </div>
  );
}

function MetricChart(props: {
  metric: string;
  replicas: Map<string, ISeries>;
  goal: Goal;
}): JSX.Element {
  const { metric, replicas, goal } = props;
  const holder = React.useRef<HTMLDivElement>(null);
  const plot = React.useRef<uPlot | null>(null);
  const names = Array.from(replicas.keys());
  const shape = names.join('\n'); // a new replica needs a new chart (uPlot's series are fixed)

  React.useLayoutEffect(() => {
    const el = holder.current!;
    const axis = {
      stroke: cssVar('--jp-ui-font-color2', '#757575'),
      grid: { stroke: cssVar('--jp-border-color2', '#e0e0e0'), width: 1 },
      ticks: { stroke: cssVar('--jp-border-color2', '#e0e0e0'), width: 1 },
      font: `10px ${cssVar('--jp-ui-font-family', 'sans-serif')}`,
      size: 36
    };
    const options: uPlot.Options = {
      width: Math.max(el.clientWidth, 120),
      height: CHART_HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false } },
      axes: [axis, { ...axis, size: 44 }],
      series: [
        {},
        ...names.map((replica, i) => ({
          label: replica,
          stroke: cssVar(REPLICA_COLORS[i % REPLICA_COLORS.length], '#1976d2'),
          width: 1.5,
          points: { show: false },
          spanGaps: true
        }))
      ]
    };
    const created = new uPlot(options, alignedData(replicas), el);
    plot.current = created;
    const observer = new ResizeObserver(() => {
      created.setSize({
        width: Math.max(el.clientWidth, 120),
        height: CHART_HEIGHT
      });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      created.destroy();
      plot.current = null;
    };
  }, [shape]);

  React.useEffect(() => {
    plot.current?.setData(alignedData(replicas));
  });

  const first = replicas.get(names[0]) ?? { steps: [], values: [] };
  const { last, best } = lastAndBest(first, goal);
  return (
    <figure className="kfj-metric" data-metric={metric}>
      <figcaption className="kfj-metric-caption">
        <span className="kfj-metric-name">{metric}</span>
        {last && (
          <span className="kfj-metric-last" title={`at step ${last.step}`}>
            last <b>{formatValue(last.value)}</b>
          </span>
        )}
        {best && (
          <span
            className="kfj-metric-best"
            title={`${goal === 'max' ? 'highest' : 'lowest'}, at step ${best.step}`}
          >
            best <b>{formatValue(best.value)}</b> @{best.step}
          </span>
        )}
      </figcaption>
      <div className="kfj-metric-plot" ref={holder} />
    </figure>
  );
}
