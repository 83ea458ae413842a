import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';

import { MedAgentSidebar } from './sidebar';

const OPEN_COMMAND = 'medagent:open-sidebar';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-medagent:plugin',
  description: 'A sidebar agent that writes, runs and verifies imaging pipelines in the open notebook.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const sidebar = new MedAgentSidebar(tracker, path => {
      void app.commands.execute('docmanager:open', { path });
    });
    app.shell.add(sidebar, 'right', { rank: 600 });
    restorer?.add(sidebar, sidebar.id);
    app.commands.addCommand(OPEN_COMMAND, {
      label: 'Open MedAgent',
      execute: () => app.shell.activateById(sidebar.id)
    });
    palette?.addItem({ command: OPEN_COMMAND, category: 'MedAgent' });
  }
};

export default plugin;
