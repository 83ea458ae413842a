// The MedAgent sidebar: request, data folder, backend, approve and isolation switches, Start / Stop / Export, spend, timeline.
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import medagentSvg from '../style/icons/medagent.svg';

import { postJSON, requestAPI } from './api';
import { ApprovalPanel } from './approval';
import { h } from './dom';
import { Decision, IAgentEvent, IBackend, IEventsReply } from './events';
import { NotebookMirror } from './mirror';
import { Timeline } from './timeline';

export const SIDEBAR_ID = 'jupyter-medagent:sidebar';

export const medagentIcon = new LabIcon({ name: 'jupyter-medagent:icon', svgstr: medagentSvg });

type State = 'idle' | 'running' | 'finished';

export class MedAgentSidebar extends Widget {
  private request = h('textarea', {
    className: 'jp-MedAgent-request',
    rows: '4',
    placeholder: 'Ask, e.g. segment the LV, myocardium and RV and report the ejection fraction'
  });
  private dataDir = h('input', { className: 'jp-MedAgent-data', type: 'text', value: 'data' });
  private backend = h('select', { className: 'jp-MedAgent-backend' });
  private approveMode = h('input', { className: 'jp-MedAgent-approve-mode', type: 'checkbox' });
  private isolated = h('input', { className: 'jp-MedAgent-isolated', type: 'checkbox' });
  private startButton = h('button', { className: 'jp-MedAgent-start jp-mod-styled jp-mod-accept' }, 'Start');
  private stopButton = h('button', { className: 'jp-MedAgent-stop jp-mod-styled jp-mod-warn', disabled: '' }, 'Stop');
  private exportButton = h('button', { className: 'jp-MedAgent-export jp-mod-styled', disabled: '' }, 'Export refined notebook');
  private errorLine = h('div', { className: 'jp-MedAgent-error', role: 'alert' });
  private timeline: Timeline;
  private approval: ApprovalPanel;
  private runId: string | null = null;
  private mirror: NotebookMirror | null = null;

  constructor(private tracker: INotebookTracker, private openPath: (path: string) => void) {
    super();
    this.id = SIDEBAR_ID;
    this.title.label = 'MedAgent';
    this.title.icon = medagentIcon;
    this.title.caption = 'MedAgent: build and verify an imaging pipeline in this notebook';
    this.addClass('jp-MedAgent-sidebar');
    this.timeline = new Timeline(openPath);
    this.approval = new ApprovalPanel((cellId, decision, source) => this.decide(cellId, decision, source));
    this.node.append(
      h('label', {}, 'Request', this.request),
      h('label', {}, 'Data folder (relative to the notebook)', this.dataDir),
      h('label', {}, 'Backend', this.backend),
      h('label', { className: 'jp-MedAgent-switch' }, this.approveMode, ' Approve each cell'),
      h(
        'label',
        {
          className: 'jp-MedAgent-switch',
          title:
            'The cells run in a sandboxed kernel of their own (no network, the data read-only, only the ' +
            "run's output folder writable). Its variables are not shared with this notebook's kernel."
        },
        this.isolated,
        ' Run in an isolated kernel (variables are not shared with this notebook)'
      ),
      h('div', { className: 'jp-MedAgent-buttons' }, this.startButton, this.stopButton, this.exportButton),
      this.errorLine,
      this.timeline.spendNode,
      this.approval.node,
      this.timeline.node
    );
    this.startButton.addEventListener('click', () => void this.start());
    this.stopButton.addEventListener('click', () => void this.stop());
    this.exportButton.addEventListener('click', () => void this.exportNotebook());
    // A model writes untrusted code: isolate it unless the user unticks the box; the offline planner's own cells may share the kernel.
    this.backend.addEventListener('change', () => {
      this.isolated.checked = this.backend.value !== 'offline' && !this.backend.value.startsWith('offline:');
    });
    this.setState('idle');
    void this.loadBackends();
  }

  private setState(state: State): void {
    this.node.dataset.state = state;
    this.startButton.disabled = state === 'running';
    this.stopButton.disabled = state !== 'running';
  }

  private showError(message: string): void {
    this.errorLine.textContent = message;
  }

  private async loadBackends(): Promise<void> {
    try {
      const reply = await requestAPI<{ default: string; backends: IBackend[] }>('backends');
      this.backend.replaceChildren(
        ...reply.backends.map(b => {
          const option = h('option', { value: b.selector }, b.available ? b.label : `${b.label} (${b.reason})`);
          option.disabled = !b.available;
          option.selected = b.selector === reply.default;
          return option;
        })
      );
      this.backend.dispatchEvent(new Event('change'));
    } catch (error) {
      this.backend.replaceChildren(h('option', { value: 'offline' }, 'offline'));
      this.showError(`Could not list backends: ${(error as Error).message}`);
    }
  }

  private async start(): Promise<void> {
    this.showError('');
    const panel = this.tracker.currentWidget;
    const kernel = panel?.sessionContext.session?.kernel;
    if (!panel || (!kernel && !this.isolated.checked)) {
      this.showError(
        'Open a notebook with a running kernel first: the agent works in that kernel (or tick "Run in an isolated kernel").'
      );
      return;
    }
    if (!this.request.value.trim()) {
      this.showError('Write what you want first.');
      return;
    }
    this.timeline.clear();
    this.approval.hide();
    this.exportButton.disabled = true;
    try {
      const reply = await requestAPI<{ run_id: string }>(
        'runs',
        postJSON({
          request: this.request.value,
          data_dir: this.dataDir.value,
          kernel_id: kernel?.id,
          notebook_path: panel.context.path,
          backend: this.backend.value || 'offline',
          mode: this.approveMode.checked ? 'approve' : 'auto',
          isolated: this.isolated.checked
        })
      );
      this.runId = reply.run_id;
      this.node.dataset.runId = reply.run_id;
      this.mirror = new NotebookMirror(panel.content, reply.run_id);
      this.setState('running');
      await this.follow(reply.run_id);
    } catch (error) {
      this.showError((error as Error).message);
      this.setState(this.runId ? 'finished' : 'idle');
    }
  }

  private async follow(runId: string): Promise<void> {
    let after = 0;
    while (this.runId === runId) {
      const reply = await requestAPI<IEventsReply>(`runs/${runId}/events?after=${after}&wait=10`);
      reply.events.forEach(event => this.handle(event));
      after = reply.next;
      if (reply.done) {
        break;
      }
    }
  }

  private handle(event: IAgentEvent): void {
    this.timeline.add(event);
    this.mirror?.apply(event);
    if (event.kind === 'approval_request') {
      this.approval.show(event);
    } else if (event.kind === 'finished') {
      this.approval.hide();
      this.setState('finished');
      this.exportButton.disabled = !event.notebook;
    }
  }

  private async decide(cellId: string, decision: Decision, source?: string): Promise<void> {
    try {
      await requestAPI(`runs/${this.runId}/approval`, postJSON({ cell_id: cellId, decision, source }));
    } catch (error) {
      this.showError((error as Error).message);
    }
  }

  private async stop(): Promise<void> {
    if (!this.runId) {
      return;
    }
    this.stopButton.disabled = true;
    try {
      await requestAPI(`runs/${this.runId}/stop`, { method: 'POST' });
    } catch (error) {
      this.showError((error as Error).message);
    }
  }

  private async exportNotebook(): Promise<void> {
    try {
      const reply = await requestAPI<{ path: string }>(`runs/${this.runId}/notebook`);
      this.openPath(reply.path);
    } catch (error) {
      this.showError((error as Error).message);
    }
  }
}
