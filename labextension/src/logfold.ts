/**
 * TensorFlow's C++ start-up lines (oneDNN, the CUDA probe, CPU features, the XLA computation
 * placer), folded into one dim row in the log pane. The patterns are tfStartupPatterns.json,
 * which kubeflow_jupyter/logfold.py recognises too; the raw log is never changed.
 */
import patterns from './tfStartupPatterns.json';

const STARTUP_LINE = new RegExp(
  '^(?:' +
    patterns.patterns
      .map(p => p.split('{sources}').join(patterns.sources.join('|')))
      .join('|') +
    ')'
);

/** Whether `line` is one of TensorFlow's C++ start-up messages. */
export function isStartupLine(line: string): boolean {
  return STARTUP_LINE.test(line.trim());
}

/** A run of start-up lines, shown as its marker until expanded. */
export interface IFold {
  /** Index of its first line in the log: a stable key while lines are appended. */
  start: number;
  lines: string[];
}

export type LogItem = string | IFold;

export function foldMarker(fold: IFold): string {
  const n = fold.lines.length;
  return `TensorFlow start-up messages (${n} line${n === 1 ? '' : 's'})`;
}

/**
 * The log as text runs and folds: consecutive other lines are joined into one string (one text
 * node per run keeps a 5,000-line log cheap to render), each run of start-up lines is one fold.
 */
export function foldLog(lines: readonly string[]): LogItem[] {
  const items: LogItem[] = [];
  let text: string[] = [];
  let fold: IFold | null = null;
  lines.forEach((line, i) => {
    if (isStartupLine(line)) {
      if (text.length) {
        items.push(text.join('\n'));
        text = [];
      }
      if (fold === null) {
        fold = { start: i, lines: [] };
        items.push(fold);
      }
      fold.lines.push(line);
    } else {
      fold = null;
      text.push(line);
    }
  });
  if (text.length) {
    items.push(text.join('\n'));
  }
  return items;
}
