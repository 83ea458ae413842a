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
      kind: 'cell_executed', seq: 3, cell_id: 'c2', outputs: [], duration_s: 0.1,
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
      kind: 'verdict', seq: 1, judge: 'quantitative', verdict: 'flag', confidence: 1,
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
    t.add({ kind: 'usage', seq: 0, total_tokens: 1520, total_cost_usd: 0.01234 });
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

  it('ends with the status, the metrics and a way to open the notebook', () => {
    const opened: string[] = [];
    const t = timeline(path => opened.push(path));
    t.add({
      kind: 'finished', seq: 0, status: 'solved', reason: 'the agent reports the task solved',
      metrics: { dice_mean: 0.9734, ef_predicted: { p1: 50 } }, notebook: 'work/cine-medagent.ipynb'
    });
    const done = t.node.querySelector('.jp-MedAgent-finished')!;
    expect(done.getAttribute('data-status')).toBe('solved');
    expect(Array.from(done.querySelectorAll('td')).map(td => td.textContent)).toEqual(['dice_mean', '0.973']);
    (done.querySelector('button.jp-MedAgent-open') as HTMLButtonElement).click();
    expect(opened).toEqual(['work/cine-medagent.ipynb']);
  });

  it('clears between runs', () => {
    const t = timeline();
    t.add({ kind: 'message', seq: 0, text: 'hello' });
    t.add({ kind: 'usage', seq: 1, total_tokens: 5, total_cost_usd: 1 });
    t.clear();
    expect(t.node.children).toHaveLength(0);
    expect(t.spendNode.textContent).toBe('$0.0000 · 0 tokens');
  });
});
