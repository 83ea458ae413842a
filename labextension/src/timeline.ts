// The live timeline of a run: one row per event, thumbnails for rendered slices, verdict badges, progress bars,
// the results the user asked for. The sidebar and the %%medagent magic's output both draw their run with it.
import { h } from './dom';
import { AgentEvent, IFinishedEvent, IProgressEvent } from './events';

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
  private progressRows = new Map<string, HTMLElement>();
  private resultsShown = false;

  constructor(private openNotebook: (path: string) => void = () => undefined) {
    this.node = h('ol', { className: 'jp-MedAgent-timeline' });
    this.spendNode = h('div', { className: 'jp-MedAgent-spend' }, formatSpend(this.spend));
  }

  clear(): void {
    this.node.replaceChildren();
    this.cellRows.clear();
    this.progressRows.clear();
    this.resultsShown = false;
    this.liveMessage = null;
    this.spend = { tokens: 0, costUsd: 0 };
    this.spendNode.textContent = formatSpend(this.spend);
  }

  add(event: AgentEvent): void {
    switch (event.kind) {
      case 'usage':
        this.spend = { tokens: event.total_tokens ?? 0, costUsd: event.total_cost_usd ?? 0 };
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
      case 'cell_output':
        this.cellRows.get(event.cell_id)?.setAttribute('data-status', 'running');
        return; // the mirrored cell shows the outputs themselves
      case 'progress':
        this.progress(event);
        return;
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

  private row(event: AgentEvent, body: HTMLElement): HTMLElement {
    const row = h('li', { className: 'jp-MedAgent-event', 'data-kind': event.kind }, body);
    this.node.append(row);
    row.scrollIntoView?.({ block: 'nearest' });
    return row;
  }

  // One bar per piece of work (a cell's training, the verification re-run), updated in place.
  private progress(event: IProgressEvent): void {
    const key = `${event.what}:${event.cell_id ?? ''}`;
    let row = this.progressRows.get(key);
    if (!row) {
      row = this.row(
        event,
        h(
          'div',
          { className: 'jp-MedAgent-progress', 'data-what': event.what },
          h('progress', {}),
          h('span', { className: 'jp-MedAgent-progress-text' })
        )
      );
      this.progressRows.set(key, row);
    }
    const bar = row.querySelector('progress') as HTMLProgressElement;
    bar.max = Math.max(event.total, 1);
    bar.value = event.done;
    row.querySelector('.jp-MedAgent-progress')!.setAttribute('data-done', String(event.done >= event.total));
    row.querySelector('.jp-MedAgent-progress-text')!.textContent =
      `${event.what}: ${event.done} of ${event.total} · ${formatSeconds(event.elapsed_s)} elapsed` +
      (event.eta_s != null && event.done < event.total ? ` · about ${formatSeconds(event.eta_s)} left` : '');
  }

  private render(event: AgentEvent): HTMLElement | null {
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
        const verb = event.by_user ? 'edited by you' : event.replaces ? 'rewrote' : 'wrote';
        const details = h(
          'details',
          { className: 'jp-MedAgent-cell', 'data-cell-id': event.cell_id, 'data-status': 'written' },
          h('summary', {}, h('code', {}, event.cell_id), ` ${verb}: ${event.note}`),
          h('pre', {}, event.source)
        );
        if (event.by_user) {
          details.setAttribute('data-edited', 'true');
        }
        this.cellRows.set(event.cell_id, details);
        return details;
      }
      case 'cell_skipped':
        this.cellRows.get(event.cell_id)?.setAttribute('data-status', 'skipped');
        return h(
          'div',
          { className: 'jp-MedAgent-status', 'data-status': 'skipped', 'data-cell-id': event.cell_id },
          h('code', {}, event.cell_id),
          ' skipped by you: not run'
        );
      case 'results':
        this.resultsShown = true;
        return h(
          'div',
          { className: 'jp-MedAgent-results' },
          h('b', {}, 'Results'),
          event.summary ? h('div', {}, event.summary) : null,
          ...headlineTables(event.headline)
        );
      case 'cell_executed': {
        const error = event.error;
        // Only Stop (or the kernel's own Interrupt button) interrupts a cell: the user's doing, not an error.
        const stopped = error?.ename === 'KeyboardInterrupt';
        const status = !error ? 'ok' : stopped ? 'stopped' : 'error';
        this.cellRows.get(event.cell_id)?.setAttribute('data-status', status);
        const text = !error
          ? `ran in ${event.duration_s.toFixed(1)} s`
          : stopped
            ? `stopped by you after ${event.duration_s.toFixed(1)} s`
            : `error after ${event.duration_s.toFixed(1)} s: ${error.ename}: ${error.evalue}`;
        return h(
          'div',
          { className: 'jp-MedAgent-status', 'data-status': status, 'data-cell-id': event.cell_id },
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
        if (event.verdict === 'not_checked') {
          return h(
            'div',
            {},
            'Judge ',
            h('span', { className: 'jp-MedAgent-verdict', 'data-verdict': 'not_checked' }, 'not checked'),
            event.reason ? h('div', { className: 'jp-MedAgent-note' }, event.reason) : null
          );
        }
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

  private finished(event: IFinishedEvent): HTMLElement {
    // Bars of work the run's end cut short stop counting down.
    this.progressRows.forEach(row => {
      const progress = row.querySelector('.jp-MedAgent-progress')!;
      if (progress.getAttribute('data-done') !== 'true') {
        progress.setAttribute('data-done', 'stopped');
        const text = row.querySelector('.jp-MedAgent-progress-text')!;
        text.textContent = (text.textContent || '').replace(/ · about .* left$/, '') + ' · not finished';
      }
    });
    const numbers = Object.entries(event.metrics || {}).filter(([, v]) => typeof v === 'number');
    // The headline is what the user asked for; every other number stays one click away.
    const others = numbers.length
      ? h(
          'details',
          { className: 'jp-MedAgent-all-measures' },
          h('summary', {}, `All measures (${numbers.length})`),
          h(
            'table',
            { className: 'jp-MedAgent-metrics' },
            ...numbers.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, formatNumber(v as number))))
          )
        )
      : null;
    const notebook = event.notebook;
    const open = notebook ? h('button', { className: 'jp-MedAgent-open jp-mod-styled' }, 'Open notebook') : null;
    open?.addEventListener('click', () => this.openNotebook(notebook!));
    const verified = VERIFIED[event.verified ?? ''];
    return h(
      'div',
      { className: 'jp-MedAgent-finished', 'data-status': event.status, 'data-verified': event.verified || '' },
      h('b', {}, `Finished: ${event.status}`),
      ` — ${event.reason}`,
      verified ? h('div', { className: 'jp-MedAgent-verified' }, verified) : null,
      ...(this.resultsShown ? [] : headlineTables(event.headline)),
      others,
      open
    );
  }
}

const VERIFIED: Record<string, string> = {
  yes: 'Verified: the notebook re-ran top to bottom on its own and reproduced the reported numbers.',
  no: 'Not verified: the notebook did not re-run on its own.',
  'not reproduced':
    'Not reproduced: the notebook re-ran, but to other numbers than the reported ones (both are in its Results).',
  skipped: 'Not verified: the re-run was skipped; the notebook says so.'
};

export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(3);
}

// The headline tables (jupyter_medagent/notebook/headline.py): titles, columns and rows already formatted.
interface IHeadlineTable {
  title: string;
  columns: string[];
  rows: string[][];
}

function headlineTables(tables: Record<string, any>[] = []): HTMLElement[] {
  return (tables as IHeadlineTable[]).map(t =>
    h(
      'table',
      { className: 'jp-MedAgent-headline' },
      h('caption', {}, t.title),
      h('tr', {}, ...t.columns.map(c => h('th', {}, c))),
      ...t.rows.map(r => h('tr', {}, ...r.map(v => h('td', {}, v))))
    )
  );
}
