import { Timeline } from '../timeline';

const PNG = 'iVBORw0KGgo=';

function timeline(open: (path: string) => void = () => undefined): Timeline {
  const t = new Timeline(open);
  document.body.replaceChildren(t.spendNode, t.node);
  return t;
}

const rows = (t: Timeline, kind: string) =>
  Array.from(t.node.querySelectorAll(`.jp-MedAgent-event[data-kind="${kind}"]`)) as HTMLElement[];

describe('Timeline', () => {
  it('renders a plan with its steps', () => {
    const t = timeline();
    t.add({ kind: 'plan', seq: 0, steps: ['inspect', 'train'], rationale: 'data first' });
    const [row] = rows(t, 'plan');
    expect(Array.from(row.querySelectorAll('li')).map(li => li.textContent)).toEqual(['inspect', 'train']);
    expect(row.textContent).toContain('data first');
  });

  it('marks a cell ok or error once it ran', () => {
    const t = timeline();
    t.add({ kind: 'cell_written', seq: 0, cell_id: 'c1', source: 'x = 1', note: 'Set x.', replaces: null });
    t.add({ kind: 'cell_executed', seq: 1, cell_id: 'c1', outputs: [], error: null, duration_s: 0.25 });
    t.add({ kind: 'cell_written', seq: 2, cell_id: 'c2', source: '1/0', note: 'Divide.', replaces: null });
    t.add({
      kind: 'cell_executed',
      seq: 3,
      cell_id: 'c2',
      outputs: [],
      duration_s: 0.1,
      error: { ename: 'ZeroDivisionError', evalue: 'division by zero', traceback: [] }
    });
    const cells = t.node.querySelectorAll('.jp-MedAgent-cell');
    expect(Array.from(cells).map(c => c.getAttribute('data-status'))).toEqual(['ok', 'error']);
    const failed = t.node.querySelector('.jp-MedAgent-status[data-status="error"]')!;
    expect(failed.textContent).toContain('ZeroDivisionError: division by zero');
    expect(t.node.querySelector('.jp-MedAgent-cell pre')!.textContent).toBe('x = 1');
  });

  it('says when a cell was rewritten instead of added', () => {
    const t = timeline();
    t.add({ kind: 'cell_written', seq: 0, cell_id: 'c1', source: 'y', note: 'Fix.', replaces: 'c1' });
    expect(rows(t, 'cell_written')[0].textContent).toContain('rewrote: Fix.');
  });

  it('shows rendered slices as thumbnails and the verdict as a badge', () => {
    const t = timeline();
    t.add({ kind: 'render', seq: 0, cell_id: 'c3', png: PNG, caption: 'LV overlay' });
    t.add({
      kind: 'verdict',
      seq: 1,
      judge: 'quantitative',
      verdict: 'flag',
      confidence: 1,
      findings: [{ case: 'p01', kind: 'orientation_flip', message: 'label mirrored' }]
    });
    const img = t.node.querySelector('img.jp-MedAgent-thumbnail') as HTMLImageElement;
    expect(img.getAttribute('src')).toBe(`data:image/png;base64,${PNG}`);
    expect(img.alt).toBe('LV overlay');
    const badge = t.node.querySelector('.jp-MedAgent-verdict')!;
    expect(badge.getAttribute('data-verdict')).toBe('flag');
    expect(rows(t, 'verdict')[0].textContent).toContain('p01: orientation_flip — label mirrored');
  });

  it('keeps the spend line current from usage events without adding rows', () => {
    const t = timeline();
    expect(t.spendNode.textContent).toBe('$0.0000 · 0 tokens');
    t.add({ kind: 'usage', input_tokens: 0, output_tokens: 0, seq: 0, total_tokens: 1520, total_cost_usd: 0.01234 });
    expect(t.spendNode.textContent).toBe('$0.0123 · 1520 tokens');
    expect(t.node.children).toHaveLength(0);
  });

  it('grows one row from streamed pieces, then settles on the whole message', () => {
    const t = timeline();
    t.add({ kind: 'message_delta', seq: 0, text: 'Looking at ' });
    t.add({ kind: 'message_delta', seq: 1, text: 'the data' });
    expect(rows(t, 'message_delta')[0].textContent).toBe('Looking at the data');
    t.add({ kind: 'message', seq: 2, text: 'Looking at the data.' });
    expect(t.node.children).toHaveLength(1);
    expect(t.node.textContent).toBe('Looking at the data.');
  });

  it('ends with the numbers the user asked for first, the rest folded, and a way to open the notebook', () => {
    const opened: string[] = [];
    const t = timeline(path => opened.push(path));
    t.add({
      kind: 'finished',
      seq: 0,
      status: 'solved',
      reason: 'the agent reports the task solved',
      verified: 'yes',
      metrics: { dice_mean: 0.9734, cases_measured: 22, ef_predicted: { p1: 50 } },
      notebook: 'work/cine-medagent.ipynb',
      headline: [
        {
          title: 'Ejection fraction per patient',
          columns: ['patient', 'EF (%)', 'from'],
          rows: [['p1', '50.0', 'network']]
        }
      ]
    });
    const done = t.node.querySelector('.jp-MedAgent-finished')!;
    expect(done.getAttribute('data-status')).toBe('solved');
    const headline = done.querySelector('table.jp-MedAgent-headline')!;
    expect(headline.querySelector('caption')!.textContent).toBe('Ejection fraction per patient');
    expect(Array.from(headline.querySelectorAll('td')).map(td => td.textContent)).toEqual(['p1', '50.0', 'network']);
    const folded = done.querySelector('details.jp-MedAgent-all-measures')!;
    expect(folded.hasAttribute('open')).toBe(false);
    expect(Array.from(folded.querySelectorAll('td')).map(td => td.textContent)).toEqual([
      'dice_mean',
      '0.973',
      'cases_measured',
      '22'
    ]);
    expect(done.textContent).toContain('Verified: the notebook re-ran');
    (done.querySelector('button.jp-MedAgent-open') as HTMLButtonElement).click();
    expect(opened).toEqual(['work/cine-medagent.ipynb']);
  });

  it('shows results before verification, then does not repeat them', () => {
    const t = timeline();
    const headline = [{ title: 'Dice on held-out patients', columns: ['structure', 'Dice'], rows: [['LV', '0.985']] }];
    t.add({ kind: 'results', seq: 0, summary: 'Trained a 2D UNet.', headline, metrics: {} });
    t.add({ kind: 'finished', seq: 1, status: 'solved', reason: 'ok', metrics: {}, headline, verified: 'skipped' });
    expect(t.node.querySelectorAll('table.jp-MedAgent-headline')).toHaveLength(1);
    expect(rows(t, 'results')[0].textContent).toContain('LV0.985');
    expect(rows(t, 'finished')[0].textContent).toContain('Not verified: the re-run was skipped');
  });

  it('draws progress as one bar per piece of work, updated in place', () => {
    const t = timeline();
    t.add({ kind: 'progress', seq: 0, what: 'training', done: 10, total: 40, elapsed_s: 5, eta_s: 15, cell_id: 'c7' });
    t.add({ kind: 'progress', seq: 1, what: 'training', done: 30, total: 40, elapsed_s: 75, eta_s: 25, cell_id: 'c7' });
    t.add({
      kind: 'progress',
      seq: 2,
      what: 'verification',
      done: 1,
      total: 9,
      elapsed_s: 2,
      eta_s: 16,
      cell_id: null
    });
    const bars = Array.from(t.node.querySelectorAll('progress')) as HTMLProgressElement[];
    expect(bars.map(b => [b.value, b.max])).toEqual([
      [30, 40],
      [1, 9]
    ]);
    expect(rows(t, 'progress')[0].textContent).toBe('training: 30 of 40 · 1 min 15 s elapsed · about 25 s left');
  });

  it('shows a cell Stop interrupted as stopped by you, and a cut-short bar no longer counting down', () => {
    const t = timeline();
    t.add({ kind: 'cell_written', seq: 0, cell_id: 'c7', source: 'train()', note: 'Train.', replaces: null });
    t.add({ kind: 'progress', seq: 1, what: 'training', done: 10, total: 40, elapsed_s: 5, eta_s: 840, cell_id: 'c7' });
    t.add({
      kind: 'cell_executed',
      seq: 2,
      cell_id: 'c7',
      outputs: [],
      duration_s: 6.2,
      error: { ename: 'KeyboardInterrupt', evalue: '', traceback: [] }
    });
    t.add({ kind: 'finished', seq: 3, status: 'stopped', reason: 'stopped by the user', metrics: {}, notebook: null });
    const status = t.node.querySelector('.jp-MedAgent-status[data-cell-id="c7"]')!;
    expect(status.getAttribute('data-status')).toBe('stopped');
    expect(status.textContent).toBe('c7 stopped by you after 6.2 s');
    expect(t.node.querySelector('.jp-MedAgent-progress')!.getAttribute('data-done')).toBe('stopped');
    expect(rows(t, 'progress')[0].textContent).toBe('training: 10 of 40 · 5 s elapsed · not finished');
  });

  it('marks skipped and user-edited cells, and a judge with nothing to look at', () => {
    const t = timeline();
    t.add({ kind: 'cell_written', seq: 0, cell_id: 'c3', source: 'checks()', note: 'Check.', replaces: null });
    t.add({ kind: 'cell_skipped', seq: 1, cell_id: 'c3' });
    t.add({
      kind: 'verdict',
      seq: 2,
      judge: 'panel',
      verdict: 'not_checked',
      findings: [],
      reason: 'nothing to judge'
    });
    t.add({
      kind: 'cell_written',
      seq: 3,
      cell_id: 'c4',
      source: 'y = 2',
      note: 'Fix.',
      replaces: 'c4',
      by_user: true
    });
    expect(t.node.querySelector('.jp-MedAgent-cell[data-cell-id="c3"]')!.getAttribute('data-status')).toBe('skipped');
    expect(rows(t, 'cell_skipped')[0].textContent).toBe('c3 skipped by you: not run');
    const badge = t.node.querySelector('.jp-MedAgent-verdict')!;
    expect([badge.getAttribute('data-verdict'), badge.textContent]).toEqual(['not_checked', 'not checked']);
    expect(rows(t, 'verdict')[0].textContent).not.toContain('confidence');
    expect(rows(t, 'cell_written')[1].textContent).toContain('edited by you: Fix.');
  });

  it('clears between runs', () => {
    const t = timeline();
    t.add({ kind: 'message', seq: 0, text: 'hello' });
    t.add({ kind: 'usage', input_tokens: 0, output_tokens: 0, seq: 1, total_tokens: 5, total_cost_usd: 1 });
    t.clear();
    expect(t.node.children).toHaveLength(0);
    expect(t.spendNode.textContent).toBe('$0.0000 · 0 tokens');
  });
});
