/**
 * The "Submit as TFJob…" dialog's data: the server's dry run (`POST jobs` with `dry_run`) and
 * what the dialog shows and sends. No JupyterLab imports: unit-tested under plain node.
 */

/** The dry run's answer (kubeflow_jupyter/serverext/submit.py `plan`). */
export interface ISubmitPlan {
  dryRun: true;
  name: string;
  /** Replicas by type, in the operator's order: {"Master": 1, "Worker": 1, "PS": 2}. */
  replicas: Record<string, number>;
  /** The job's working directory: the Jupyter server's root. */
  workdir: string;
  /** Replica types whose spec has no command: they would run their image's entrypoint. */
  entrypoint: string[];
  /** A command found for that image beside the YAML file, from the root. */
  suggestedCommand: string | null;
  /** What the backend refuses as the spec stands (e.g. the local backend and an entrypoint). */
  problems: { path: string; message: string }[];
  message: string;
  notices: string[];
  warnings: string[];
}

export type Validate = 'strict' | 'warn' | 'ignore';

/** What the dialog sends: `POST jobs` {path, command?, validate?, dry_run?}. */
export interface ISubmitRequest {
  path: string;
  command?: string;
  validate?: Validate;
  dry_run?: boolean;
}

/** "1 Master, 1 Worker, 2 PS". */
export function replicasText(replicas: Record<string, number>): string {
  return Object.entries(replicas)
    .map(([type, n]) => `${n} ${type}`)
    .join(', ');
}

/** The command field's first value: the suggestion when the spec relies on an image entrypoint. */
export function initialCommand(plan: ISubmitPlan): string {
  return plan.entrypoint.length > 0 ? (plan.suggestedCommand ?? '') : '';
}

/** Whether the spec cannot run as it stands without a command (what the dialog points out). */
export function needsCommand(plan: ISubmitPlan): boolean {
  return plan.entrypoint.length > 0 && plan.problems.length > 0;
}

/** The request for the dialog's answer: an empty command field sends none (the spec's own runs). */
export function submitRequest(
  path: string,
  command: string,
  validate: Validate = 'strict'
): ISubmitRequest {
  const request: ISubmitRequest = { path };
  if (command.trim()) {
    request.command = command.trim();
  }
  if (validate !== 'strict') {
    request.validate = validate;
  }
  return request;
}

/**
 * Unknown fields a strict refusal names (`unknown field`, kubectl's server-side validation):
 * the dialog then offers to drop them (validate=warn). Empty when anything else is wrong too.
 */
export function unknownFieldsOnly(
  problems: { path: string; message: string }[]
): string[] {
  if (
    problems.length === 0 ||
    !problems.every(p => p.message.startsWith('unknown field'))
  ) {
    return [];
  }
  return problems.map(p => p.path);
}
