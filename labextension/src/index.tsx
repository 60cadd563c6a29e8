import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  InputDialog,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { IStatusBar } from '@jupyterlab/statusbar';

// The sidebar, its push channel and the status bar item are all shown at start-up, so
// activation needs these modules at once; loading them lazily would only delay them.
/* eslint-disable jupyter/prefer-lazy-imports */
import { APIError, TFJobAPI } from './api';
import { isTFJobFile } from './jobs';
import { Validate, submitRequest, unknownFieldsOnly } from './submit';
import { SubmitBody } from './submitDialog';
import { JobsModel } from './model';
import { RunningJobsStatus } from './statusbar';
import {
  SubmitProblems,
  TFJobsSidebar,
  confirmAndDelete,
  tfjobIcon
} from './sidebar';
/* eslint-enable jupyter/prefer-lazy-imports */
import * as React from 'react';

namespace CommandIDs {
  export const open = 'kubeflow-jupyter:open';
  export const refresh = 'kubeflow-jupyter:refresh';
  export const submitFile = 'kubeflow-jupyter:submit-file';
  export const submitPath = 'kubeflow-jupyter:submit-path';
  export const deleteSelected = 'kubeflow-jupyter:delete-selected';
}

const CATEGORY = 'TFJobs';

/** What a command without arguments tells the command registry it takes. */
const NO_ARGS = { args: { type: 'object', properties: {} } };

/**
 * Show why a submission was refused, with the field paths the server names. When the only
 * problems are unknown fields (refused by strict validation), offer to drop them: true then.
 */
async function showSubmitError(
  path: string,
  reason: unknown
): Promise<boolean> {
  const error = reason as Partial<APIError>;
  const problems = error.problems ?? [];
  const droppable = unknownFieldsOnly(problems).length > 0;
  const result = await showDialog({
    title: 'Cannot submit TFJob',
    body: (
      <SubmitProblems
        path={path}
        message={error.message ?? String(reason)}
        problems={problems}
      />
    ),
    buttons: droppable
      ? [
          Dialog.cancelButton({ label: 'Close' }),
          Dialog.warnButton({ label: 'Drop unknown fields and continue' })
        ]
      : [Dialog.okButton()]
  });
  return droppable && result.button.accept;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'kubeflow-jupyter:plugin',
  description:
    'A sidebar for TFJobs: list, inspect, follow logs, submit from the file browser, delete.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ICommandPalette, IDefaultFileBrowser, IStatusBar, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    palette: ICommandPalette | null,
    browser: IDefaultFileBrowser | null,
    statusBar: IStatusBar | null,
    restorer: ILayoutRestorer | null
  ) => {
    const model = new JobsModel(
      new TFJobAPI(app.serviceManager.serverSettings)
    );
    const sidebar = new TFJobsSidebar(model);
    shell.add(sidebar, 'left', { rank: 600 });
    restorer?.add(sidebar, sidebar.id);
    model.start();

    /** The dialog: what would run, and where (a dry run), with an optional command. */
    const submit = async (
      path: string,
      validate: Validate = 'strict'
    ): Promise<void> => {
      let plan;
      try {
        plan = await model.api.plan(submitRequest(path, '', validate));
      } catch (reason) {
        if (await showSubmitError(path, reason)) {
          await submit(path, 'warn');
        }
        return;
      }
      const answer = await showDialog({
        title: 'Submit as TFJob',
        body: new SubmitBody(path, plan),
        buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Submit' })],
        focusNodeSelector: 'input'
      });
      if (!answer.button.accept || answer.value === null) {
        return;
      }
      try {
        const result = await model.api.submit(
          submitRequest(path, answer.value.command, validate)
        );
        model.upsert(result.job);
        model.selected = result.job.name;
        shell.activateById(sidebar.id);
        const extra = [...result.notices, ...result.warnings].join(' ');
        Notification.success(
          `Submitted TFJob "${result.job.name}". ${extra}`.trim(),
          {
            autoClose: 5000
          }
        );
      } catch (reason) {
        if (await showSubmitError(path, reason)) {
          await submit(path, 'warn');
        }
      }
    };

    const selectedYaml = (): string[] =>
      browser
        ? Array.from(browser.selectedItems())
            .filter(item => item.type !== 'directory' && isTFJobFile(item.path))
            .map(item => item.path)
        : [];

    app.commands.addCommand(CommandIDs.open, {
      label: 'Show TFJobs',
      describedBy: NO_ARGS,
      caption: 'Show the TFJobs sidebar',
      icon: tfjobIcon,
      execute: () => shell.activateById(sidebar.id)
    });

    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh TFJobs',
      describedBy: NO_ARGS,
      execute: () => model.refresh()
    });

    app.commands.addCommand(CommandIDs.submitFile, {
      label: 'Submit as TFJob…',
      describedBy: NO_ARGS,
      caption:
        'Submit the selected YAML file as a TFJob (it runs in the Jupyter root directory)',
      icon: tfjobIcon,
      isVisible: () => selectedYaml().length > 0,
      execute: async () => {
        for (const path of selectedYaml()) {
          await submit(path);
        }
      }
    });

    app.commands.addCommand(CommandIDs.submitPath, {
      label: 'Submit a TFJob YAML file…',
      describedBy: {
        args: {
          type: 'object',
          properties: {
            path: {
              type: 'string',
              description:
                'The YAML file, relative to the Jupyter root; asked for when absent'
            }
          }
        }
      },
      execute: async args => {
        let path = args.path as string | undefined;
        if (!path) {
          const answer = await InputDialog.getText({
            title: 'Submit a TFJob',
            label: 'Path of the YAML file (relative to the Jupyter root)',
            text: selectedYaml()[0] ?? ''
          });
          if (!answer.button.accept || !answer.value) {
            return;
          }
          path = answer.value;
        }
        await submit(path);
      }
    });

    app.commands.addCommand(CommandIDs.deleteSelected, {
      label: 'Delete the selected TFJob…',
      describedBy: NO_ARGS,
      isEnabled: () => model.selected !== null,
      execute: async () => {
        if (model.selected !== null) {
          await confirmAndDelete(model, model.selected);
        }
      }
    });

    app.contextMenu.addItem({
      command: CommandIDs.submitFile,
      selector: '.jp-DirListing-item[data-file-type="yaml"]',
      rank: 10
    });

    if (palette) {
      for (const command of [
        CommandIDs.open,
        CommandIDs.refresh,
        CommandIDs.submitPath,
        CommandIDs.deleteSelected
      ]) {
        palette.addItem({ command, category: CATEGORY });
      }
    }

    if (statusBar) {
      statusBar.registerStatusItem('kubeflow-jupyter:running', {
        item: new RunningJobsStatus(model, () =>
          shell.activateById(sidebar.id)
        ),
        align: 'left',
        rank: 50,
        activeStateChanged: model.changed
      });
    }
  }
};

export default plugin;
