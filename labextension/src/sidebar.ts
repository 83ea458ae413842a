// The MedAgent sidebar: request, data folder, backend, approve / isolation / verify switches, the run options (saved in
// the user's settings), Start / Stop / Export and spend (kept in view while the timeline scrolls), the timeline. It re-attaches to the newest run of the notebook in
// front (after a page reload, or when switching notebooks), and a second Start while one is starting does nothing.
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import medagentSvg from '../style/icons/medagent.svg';

import { postJSON, requestAPI } from './api';
import { ApprovalPanel } from './approval';
import { h } from './dom';
import { AgentEvent, Decision, IBackend, IEventsReply, IRunSummary } from './events';
import { NotebookMirror } from './mirror';
import { OptionsForm } from './options';
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
  private verify = h('input', { className: 'jp-MedAgent-verify', type: 'checkbox', checked: '' });
  private startButton = h('button', { className: 'jp-MedAgent-start jp-mod-styled jp-mod-accept' }, 'Start');
  private stopButton = h('button', { className: 'jp-MedAgent-stop jp-mod-styled jp-mod-warn', disabled: '' }, 'Stop');
  private exportButton = h(
    'button',
    { className: 'jp-MedAgent-export jp-mod-styled', disabled: '' },
    'Export refined notebook'
  );
  private errorLine = h('div', { className: 'jp-MedAgent-error', role: 'alert' });
  private timeline: Timeline;
  private options = new OptionsForm(['backend', 'verify'], message => this.showError(message));
  private approval: ApprovalPanel;
  private runId: string | null = null;
  private mirror: NotebookMirror | null = null;
  private starting = false;
  private runBackend: string | null = null; // the backend of the run shown, selected once the list has loaded
  private attachedPath: string | null = null;

  constructor(
    private tracker: INotebookTracker,
    private openPath: (path: string) => void
  ) {
    super();
    this.id = SIDEBAR_ID;
    this.title.label = 'MedAgent';
    this.title.icon = medagentIcon;
    this.title.caption = 'MedAgent: build and verify an imaging pipeline in this notebook';
    this.addClass('jp-MedAgent-sidebar');
    this.timeline = new Timeline(openPath);
    this.approval = new ApprovalPanel((cellId, decision, source) => this.decide(cellId, decision, source));
    const controls = h(
      'div',
      { className: 'jp-MedAgent-controls' },
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
      h(
        'label',
        {
          className: 'jp-MedAgent-switch',
          title:
            'At the end, re-run the refined notebook top to bottom in a fresh kernel (it retrains, so it takes about ' +
            'as long as the run; the results are shown first). Unticked, the notebook is marked "not verified".'
        },
        this.verify,
        ' Verify by re-running the notebook'
      ),
      this.options.node
    );
    // Start / Stop / Export and the spend stay in view however long the timeline grows.
    const sticky = h(
      'div',
      { className: 'jp-MedAgent-sticky' },
      h('div', { className: 'jp-MedAgent-buttons' }, this.startButton, this.stopButton, this.exportButton),
      this.errorLine,
      this.timeline.spendNode,
      this.approval.node
    );
    this.node.append(controls, sticky, h('div', { className: 'jp-MedAgent-scroll' }, this.timeline.node));
    this.startButton.addEventListener('click', () => void this.start());
    this.stopButton.addEventListener('click', () => void this.stop());
    this.exportButton.addEventListener('click', () => void this.exportNotebook());
    // A model writes untrusted code: isolate it unless the user unticks the box; the offline planner's own cells may share the kernel.
    this.backend.addEventListener('change', () => {
      this.isolated.checked = this.backend.value !== 'offline' && !this.backend.value.startsWith('offline:');
    });
    // Saved on the user's own choice only ('input'), not when a list or a run shown selects one.
    this.backend.addEventListener('input', () => this.options.save('backend', this.backend.value));
    this.verify.addEventListener('input', () => this.options.save('verify', this.verify.checked));
    this.setState('idle');
    void this.loadBackends();
    this.tracker.currentChanged.connect((_, panel) => void this.attachTo(panel));
    void this.attachTo(this.tracker.currentWidget);
  }

  // The saved options: the form's fields, the verify switch, and the backend once the list has it.
  useSettings(settings: ISettingRegistry.ISettings): void {
    this.options.use(settings);
    if (this.runBackend === null) {
      this.verify.checked = this.options.saved('verify') !== false;
      this.selectSavedBackend();
    }
  }

  private selectSavedBackend(): void {
    const saved = this.options.saved('backend');
    const option = Array.from(this.backend.options).find(o => o.value === saved && !o.disabled);
    if (option && this.backend.value !== option.value) {
      this.backend.value = option.value;
      this.backend.dispatchEvent(new Event('change')); // its isolation setting
    }
  }

  // Follow the newest run of the notebook in front, if it has one: its events replayed into the timeline; a run
  // still working also mirrors into the notebook again (cells written before a reload are found by their ids).
  private async attachTo(panel: NotebookPanel | null): Promise<void> {
    if (!panel || this.starting) {
      return;
    }
    await panel.context.ready;
    if (panel.context.path === this.attachedPath || this.tracker.currentWidget !== panel) {
      return;
    }
    this.attachedPath = panel.context.path;
    this.runId = null;
    this.mirror = null;
    this.timeline.clear();
    this.approval.hide();
    this.showError('');
    this.exportButton.disabled = true;
    this.setState('idle');
    let runs: IRunSummary[];
    try {
      runs = (await requestAPI<{ runs: IRunSummary[] }>(`runs?notebook_path=${encodeURIComponent(panel.context.path)}`))
        .runs;
    } catch {
      return; // no server extension answer: nothing to re-attach to
    }
    const newest = runs[runs.length - 1];
    if (!newest || this.attachedPath !== panel.context.path) {
      return;
    }
    // The boxes show the run being shown, as it was started.
    this.request.value = newest.request;
    this.dataDir.value = newest.data_dir || '';
    this.runBackend = newest.backend || 'offline';
    this.selectBackend();
    this.approveMode.checked = newest.mode === 'approve';
    this.isolated.checked = !!newest.isolated;
    this.verify.checked = newest.verify !== false;
    if (newest.options) {
      this.options.show(newest.options);
    }
    const live = newest.status === 'running';
    this.follow(newest.run_id, live ? new NotebookMirror(panel.content, newest.run_id) : null);
  }

  private setState(state: State): void {
    this.node.dataset.state = state;
    this.startButton.disabled = state === 'running' || this.starting;
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
      if (this.runBackend === null) {
        this.backend.dispatchEvent(new Event('change')); // the default backend's isolation setting
        this.selectSavedBackend();
      } else {
        this.selectBackend(); // a run is shown (re-attached before the list came): its settings stay
      }
    } catch (error) {
      this.backend.replaceChildren(h('option', { value: 'offline' }, 'offline'));
      this.showError(`Could not list backends: ${(error as Error).message}`);
    }
  }

  private selectBackend(): void {
    const option = Array.from(this.backend.options).find(o => o.value === this.runBackend);
    if (option) {
      this.backend.value = option.value; // no change event: the run's own isolation setting stays as it was
    }
  }

  private async start(): Promise<void> {
    if (this.starting || this.node.dataset.state === 'running') {
      return; // a double click: the first Start is already on its way
    }
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
    this.starting = true;
    this.setState('running');
    this.timeline.clear();
    this.approval.hide();
    this.exportButton.disabled = true;
    try {
      const reply = await requestAPI<{ run_id: string }>(
        'runs',
        postJSON({
          ...this.options.values(),
          request: this.request.value,
          data_dir: this.dataDir.value,
          kernel_id: kernel?.id,
          notebook_path: panel.context.path,
          backend: this.backend.value || 'offline',
          mode: this.approveMode.checked ? 'approve' : 'auto',
          isolated: this.isolated.checked,
          verify: this.verify.checked
        })
      );
      this.attachedPath = panel.context.path;
      this.follow(reply.run_id, new NotebookMirror(panel.content, reply.run_id));
    } catch (error) {
      this.showError((error as Error).message);
      this.setState('idle');
    } finally {
      this.starting = false;
      this.setState(this.node.dataset.state as State);
    }
  }

  private follow(runId: string, mirror: NotebookMirror | null): void {
    this.runId = runId;
    this.node.dataset.runId = runId;
    this.mirror = mirror;
    this.setState('running');
    void this.poll(runId);
  }

  private async poll(runId: string): Promise<void> {
    let after = 0;
    while (this.runId === runId) {
      let reply: IEventsReply;
      try {
        reply = await requestAPI<IEventsReply>(`runs/${runId}/events?after=${after}&wait=10`);
      } catch (error) {
        this.showError(`Lost touch with the run: ${(error as Error).message}`);
        await new Promise(resolve => setTimeout(resolve, 2000));
        continue;
      }
      if (this.runId !== runId) {
        return; // the sidebar moved on to another notebook's run
      }
      reply.events.forEach(event => this.handle(event));
      after = reply.next;
      if (reply.done) {
        if (this.node.dataset.state === 'running') {
          this.setState('finished');
        }
        return;
      }
    }
  }

  private handle(event: AgentEvent): void {
    this.timeline.add(event);
    this.mirror?.apply(event);
    if (event.kind === 'approval_request') {
      this.approval.show(event);
    } else if (
      (event.kind === 'cell_executed' || event.kind === 'cell_skipped') &&
      this.approval.waitingFor === event.cell_id
    ) {
      this.approval.hide(); // answered (here, or before a reload)
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
