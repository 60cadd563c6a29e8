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

/** Show why a submission was refused, with the field paths the server names. */
async function showSubmitError(path: string, reason: unknown): Promise<void> {
  const error = reason as Partial<APIError>;
  await showDialog({
    title: 'Cannot submit TFJob',
    body: (
      <SubmitProblems
        path={path}
        message={error.message ?? String(reason)}
        problems={error.problems ?? []}
      />
    ),
    buttons: [Dialog.okButton()]
  });
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

    const submit = async (path: string): Promise<void> => {
      try {
        const result = await model.api.submitFile(path);
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
        await showSubmitError(path, reason);
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
      label: 'Submit as TFJob',
      describedBy: NO_ARGS,
      caption: 'Submit the selected YAML file as a TFJob',
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
