import { Dialog, ReactWidget } from '@jupyterlab/apputils';
import * as React from 'react';

import { ISubmitPlan, initialCommand, replicasText } from './submit';

/** What the dialog gives back: the command field (empty: the spec's own commands). */
export interface ISubmitChoice {
  command: string;
}

/**
 * The body of "Submit as TFJob": the dry run's job name, replicas by type and working directory
 * (the Jupyter root: relative paths in the job start there), and an optional command, prefilled
 * when the spec relies on its image's entrypoint.
 */
export class SubmitBody
  extends ReactWidget
  implements Dialog.IBodyWidget<ISubmitChoice>
{
  constructor(
    readonly path: string,
    readonly plan: ISubmitPlan
  ) {
    super();
    this.addClass('kfj-submit');
    this._command = initialCommand(plan);
  }

  getValue(): ISubmitChoice {
    return { command: this._command };
  }

  render(): JSX.Element {
    const plan = this.plan;
    return (
      <div className="kfj-submit-body">
        <dl className="kfj-submit-facts">
          <dt>File</dt>
          <dd>
            <code>{this.path}</code>
          </dd>
          <dt>Job</dt>
          <dd className="kfj-submit-name">{plan.name}</dd>
          <dt>Replicas</dt>
          <dd className="kfj-submit-replicas">{replicasText(plan.replicas)}</dd>
          <dt>Working directory</dt>
          <dd>
            <code className="kfj-submit-workdir">{plan.workdir}</code>
            <div className="kfj-submit-hint">
              The Jupyter root: relative paths in the job (its command, files it
              reads or writes) start here, as in the file browser.
            </div>
          </dd>
        </dl>
        <label className="kfj-submit-command">
          <span>
            Command <span className="kfj-submit-hint">(optional)</span>
          </span>
          <input
            className="jp-mod-styled"
            type="text"
            defaultValue={this._command}
            placeholder="python path/to/script.py"
            spellCheck={false}
            onChange={e => {
              this._command = e.currentTarget.value;
            }}
          />
          <span className="kfj-submit-hint">
            {plan.entrypoint.length > 0
              ? `${plan.entrypoint.join(' and ')} ${plan.entrypoint.length === 1 ? 'has' : 'have'} no command in the spec (${plan.entrypoint.length === 1 ? 'it relies' : 'they rely'} on the image's entrypoint): this command runs in every replica instead.`
              : 'Runs in every replica instead of the spec’s commands; leave it empty to keep them.'}
          </span>
        </label>
        {plan.problems.length > 0 && (
          <ul className="kfj-problems kfj-submit-problems">
            {Array.from(new Set(plan.problems.map(p => p.message))).map(
              message => (
                <li key={message}>
                  {plan.entrypoint.length > 0 ? 'Without a command: ' : ''}
                  {message}
                </li>
              )
            )}
          </ul>
        )}
        {[...plan.notices, ...plan.warnings].map((text, i) => (
          <div key={i} className="kfj-submit-note">
            {text}
          </div>
        ))}
      </div>
    );
  }

  private _command: string;
}
