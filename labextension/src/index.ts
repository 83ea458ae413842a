import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { Kernel, KernelMessage } from '@jupyterlab/services';

import { markAgentCells, NotebookMirror } from './mirror';
import { RUN_MIME, runOutputFactory } from './runoutput';
import { RunHub } from './runs';
import { MedAgentSidebar } from './sidebar';

const OPEN_COMMAND = 'medagent:open-sidebar';
// The comm target the %%medagent magic opens (jupyter_medagent/magic.py).
export const COMM_TARGET = 'jupyter_medagent.events';

// The index of the cell whose output shows this magic run: its cells go below it.
function magicCellIndex(panel: NotebookPanel, runId: string): number {
  return panel.content.widgets.findIndex(cell => {
    const outputs = (cell.model as any).outputs;
    if (!outputs) {
      return false;
    }
    for (let i = 0; i < outputs.length; i++) {
      const run = outputs.get(i).data[RUN_MIME] as any;
      if (run && run.run_id === runId) {
        return true;
      }
    }
    return false;
  });
}

// Every notebook's kernel gets the comm target, whenever the notebook opens or its kernel changes.
function listenToMagic(tracker: INotebookTracker, hub: RunHub): void {
  const register = (panel: NotebookPanel, kernel: Kernel.IKernelConnection | null | undefined) => {
    kernel?.registerCommTarget(COMM_TARGET, (comm: Kernel.IComm, open: KernelMessage.ICommOpenMsg) => {
      const runId = String((open.content.data as any).run_id);
      const channel = hub.channel(runId);
      channel.followed = true;
      const mirror = new NotebookMirror(panel.content, runId, () => magicCellIndex(panel, runId));
      comm.onMsg = (msg: KernelMessage.ICommMsgMsg) => {
        const event = (msg.content.data as any).event;
        mirror.apply(event);
        channel.push(event);
      };
    });
  };
  const watch = (panel: NotebookPanel) => {
    const context = panel.sessionContext;
    context.kernelChanged.connect((_, change) => register(panel, change.newValue));
    void context.ready.then(() => register(panel, context.session?.kernel));
    void panel.context.ready.then(() => markAgentCells(panel.content));
  };
  tracker.forEach(watch);
  tracker.widgetAdded.connect((_, panel) => watch(panel));
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-medagent:plugin',
  description: 'A sidebar agent that writes, runs and verifies imaging pipelines in the open notebook.',
  autoStart: true,
  requires: [INotebookTracker, IRenderMimeRegistry],
  optional: [ICommandPalette, ILayoutRestorer, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null
  ) => {
    const openPath = (path: string) => void app.commands.execute('docmanager:open', { path });
    const hub = new RunHub();
    rendermime.addFactory(runOutputFactory(hub, openPath));
    listenToMagic(tracker, hub);
    const sidebar = new MedAgentSidebar(tracker, openPath);
    app.shell.add(sidebar, 'right', { rank: 600 });
    restorer?.add(sidebar, sidebar.id);
    // The run options, schema/plugin.json: without them the sidebar still runs, with the server's defaults.
    settingRegistry
      ?.load(plugin.id)
      .then(settings => sidebar.useSettings(settings))
      .catch(reason => console.error('jupyter-medagent: the run options could not be loaded', reason));
    app.commands.addCommand(OPEN_COMMAND, {
      label: 'Open MedAgent',
      describedBy: { args: { type: 'object', properties: {} } },
      execute: () => app.shell.activateById(sidebar.id)
    });
    palette?.addItem({ command: OPEN_COMMAND, category: 'MedAgent' });
  }
};

export default plugin;
