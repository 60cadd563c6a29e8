import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { TextItem } from '@jupyterlab/statusbar';
import * as React from 'react';

import { JobsModel } from './model';

/** Status bar: how many TFJobs are running; a click opens the sidebar. */
export class RunningJobsStatus extends ReactWidget {
  constructor(
    private readonly model: JobsModel,
    private readonly open: () => void
  ) {
    super();
    this.addClass('kfj-status');
    this.addClass('jp-mod-highlighted');
    this.node.title = 'TFJobs running in this namespace: click to show them';
    this.node.addEventListener('click', () => this.open());
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <TextItem source={`TFJobs: ${this.model.running} running`} />}
      </UseSignal>
    );
  }
}
