// Approve-each-cell: shows the agent's code (editable) and the safety gate's concerns; Run / Edit / Skip / Stop.
import { h } from './dom';
import { Decision, IApprovalRequestEvent } from './events';

export type Decide = (cellId: string, decision: Decision, source?: string) => Promise<void>;

export class ApprovalPanel {
  readonly node: HTMLElement;
  private code: HTMLTextAreaElement;
  private concerns: HTMLElement;
  private title: HTMLElement;
  private cellId: string | null = null;
  private original = '';

  constructor(private decide: Decide) {
    this.title = h('div', { className: 'jp-MedAgent-approval-title' });
    this.concerns = h('ul', { className: 'jp-MedAgent-concerns' });
    this.code = h('textarea', { className: 'jp-MedAgent-approval-code', spellcheck: 'false', rows: '10' });
    const buttons = (['run', 'edit', 'skip', 'stop'] as Decision[]).map(d => {
      const label = { run: 'Run', edit: 'Run edited', skip: 'Skip', stop: 'Stop' }[d];
      const button = h('button', { className: `jp-MedAgent-approve-${d}`, 'data-decision': d }, label);
      button.addEventListener('click', () => void this.answer(d));
      return button;
    });
    this.node = h(
      'div',
      { className: 'jp-MedAgent-approval', hidden: '' },
      this.title,
      this.concerns,
      this.code,
      h('div', { className: 'jp-MedAgent-buttons' }, ...buttons)
    );
  }

  get waitingFor(): string | null {
    return this.cellId;
  }

  show(event: IApprovalRequestEvent): void {
    this.cellId = event.cell_id;
    this.original = event.source;
    this.code.value = event.source;
    this.title.textContent = `Cell ${event.cell_id} is waiting for your approval`;
    const concerns: string[] = event.concerns || [];
    this.concerns.replaceChildren(...concerns.map(c => h('li', {}, `Safety gate: this cell ${c}`)));
    this.node.hidden = false;
  }

  hide(): void {
    this.cellId = null;
    this.node.hidden = true;
  }

  private async answer(decision: Decision): Promise<void> {
    if (!this.cellId) {
      return;
    }
    const cellId = this.cellId;
    // "Run" after editing the code is an edit: what runs is what the user sees.
    const edited = this.code.value !== this.original;
    const effective: Decision = decision === 'run' && edited ? 'edit' : decision;
    this.hide();
    await this.decide(cellId, effective, effective === 'edit' ? this.code.value : undefined);
  }
}
