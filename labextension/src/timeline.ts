// The live timeline of a run: one row per event, thumbnails for rendered slices, verdict badges.
import { h } from './dom';
import { IAgentEvent } from './events';

export interface ISpend {
  tokens: number;
  costUsd: number;
}

export function formatSpend(spend: ISpend): string {
  return `$${spend.costUsd.toFixed(4)} · ${spend.tokens} tokens`;
}

export class Timeline {
  readonly node: HTMLElement;
  readonly spendNode: HTMLElement;
  spend: ISpend = { tokens: 0, costUsd: 0 };
  private liveMessage: HTMLElement | null = null;
  private cellRows = new Map<string, HTMLElement>();

  constructor(private openNotebook: (path: string) => void = () => undefined) {
    this.node = h('ol', { className: 'jp-MedAgent-timeline' });
    this.spendNode = h('div', { className: 'jp-MedAgent-spend' }, formatSpend(this.spend));
  }

  clear(): void {
    this.node.replaceChildren();
    this.cellRows.clear();
    this.liveMessage = null;
    this.spend = { tokens: 0, costUsd: 0 };
    this.spendNode.textContent = formatSpend(this.spend);
  }

  add(event: IAgentEvent): void {
    switch (event.kind) {
      case 'usage':
        this.spend = { tokens: event.total_tokens, costUsd: event.total_cost_usd };
        this.spendNode.textContent = formatSpend(this.spend);
        return;
      case 'message_delta':
        // Streamed narration grows one row until the whole message arrives.
        if (!this.liveMessage) {
          this.liveMessage = this.row(event, h('span', { className: 'jp-MedAgent-text' }));
        }
        this.liveMessage.lastChild!.textContent += event.text;
        return;
      case 'approval_request':
        return; // the approval panel shows it
    }
    if (event.kind === 'message' && this.liveMessage) {
      this.liveMessage.lastChild!.textContent = event.text;
      this.liveMessage = null;
      return;
    }
    const body = this.render(event);
    if (body) {
      this.row(event, body);
    }
  }

  private row(event: IAgentEvent, body: HTMLElement): HTMLElement {
    const row = h('li', { className: 'jp-MedAgent-event', 'data-kind': event.kind }, body);
    this.node.append(row);
    row.scrollIntoView?.({ block: 'nearest' });
    return row;
  }

  private render(event: IAgentEvent): HTMLElement | null {
    switch (event.kind) {
      case 'plan':
        return h(
          'div',
          {},
          h('b', {}, 'Plan'),
          event.rationale ? h('div', { className: 'jp-MedAgent-note' }, event.rationale) : null,
          h('ol', {}, ...(event.steps as string[]).map(s => h('li', {}, s)))
        );
      case 'message':
        return h('span', { className: 'jp-MedAgent-text' }, event.text);
      case 'cell_written': {
        const details = h(
          'details',
          { className: 'jp-MedAgent-cell', 'data-cell-id': event.cell_id, 'data-status': 'written' },
          h(
            'summary',
            {},
            h('code', {}, event.cell_id),
            ` ${event.replaces ? 'rewrote' : 'wrote'}: ${event.note}`
          ),
          h('pre', {}, event.source)
        );
        this.cellRows.set(event.cell_id, details);
        return details;
      }
      case 'cell_executed': {
        const ok = !event.error;
        this.cellRows.get(event.cell_id)?.setAttribute('data-status', ok ? 'ok' : 'error');
        const text = ok
          ? `ran in ${event.duration_s.toFixed(1)} s`
          : `error after ${event.duration_s.toFixed(1)} s: ${event.error.ename}: ${event.error.evalue}`;
        return h(
          'div',
          { className: 'jp-MedAgent-status', 'data-status': ok ? 'ok' : 'error', 'data-cell-id': event.cell_id },
          h('code', {}, event.cell_id),
          ` ${text}`
        );
      }
      case 'repair':
        return h('div', {}, h('b', {}, `Repair (${event.rule})`), `: ${event.reason}`);
      case 'render':
        return h(
          'figure',
          {},
          h('img', {
            className: 'jp-MedAgent-thumbnail',
            src: `data:image/png;base64,${event.png}`,
            alt: event.caption || 'rendered slices'
          }),
          h('figcaption', {}, event.caption || '')
        );
      case 'verdict': {
        const findings = (event.findings as any[]).map(f =>
          h('li', {}, `${f.case ? f.case + ': ' : ''}${f.kind}${f.message ? ' — ' + f.message : ''}`)
        );
        return h(
          'div',
          {},
          `Judge (${event.judge}) `,
          h('span', { className: 'jp-MedAgent-verdict', 'data-verdict': event.verdict }, event.verdict),
          event.confidence != null ? ` confidence ${Number(event.confidence).toFixed(2)}` : '',
          findings.length ? h('ul', {}, ...findings) : null
        );
      }
      case 'finished':
        return this.finished(event);
      default:
        return null;
    }
  }

  private finished(event: IAgentEvent): HTMLElement {
    const metrics = Object.entries(event.metrics || {}).filter(([, v]) => typeof v === 'number');
    const table = metrics.length
      ? h(
          'table',
          { className: 'jp-MedAgent-metrics' },
          ...metrics.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, (v as number).toFixed(3))))
        )
      : null;
    const open = event.notebook ? h('button', { className: 'jp-MedAgent-open' }, 'Open notebook') : null;
    open?.addEventListener('click', () => this.openNotebook(event.notebook));
    return h(
      'div',
      { className: 'jp-MedAgent-finished', 'data-status': event.status },
      h('b', {}, `Finished: ${event.status}`),
      ` — ${event.reason}`,
      table,
      open
    );
  }
}
