import { ApprovalPanel } from '../approval';
import { Decision, IApprovalRequestEvent } from '../events';

function panel() {
  const calls: [string, Decision, string | undefined][] = [];
  const p = new ApprovalPanel(async (cellId, decision, source) => {
    calls.push([cellId, decision, source]);
  });
  document.body.replaceChildren(p.node);
  return { p, calls };
}

const button = (p: ApprovalPanel, d: Decision) =>
  p.node.querySelector(`button[data-decision="${d}"]`) as HTMLButtonElement;

const request: IApprovalRequestEvent = {
  kind: 'approval_request',
  seq: 4,
  cell_id: 'c7',
  source: 'train(model)',
  concerns: []
};

describe('ApprovalPanel', () => {
  it('is hidden until a cell waits, then shows its code', () => {
    const { p } = panel();
    expect(p.node.hidden).toBe(true);
    p.show(request);
    expect(p.node.hidden).toBe(false);
    expect((p.node.querySelector('textarea') as HTMLTextAreaElement).value).toBe('train(model)');
    expect(p.waitingFor).toBe('c7');
  });

  it.each(['run', 'skip', 'stop'] as Decision[])('posts %s for the waiting cell and hides', async decision => {
    const { p, calls } = panel();
    p.show(request);
    button(p, decision).click();
    await Promise.resolve();
    expect(calls).toEqual([['c7', decision, undefined]]);
    expect(p.node.hidden).toBe(true);
    expect(p.waitingFor).toBeNull();
  });

  it('sends the edited code, also when the user edits and presses Run', async () => {
    const { p, calls } = panel();
    p.show(request);
    (p.node.querySelector('textarea') as HTMLTextAreaElement).value = 'train(model, epochs=5)';
    button(p, 'run').click();
    await Promise.resolve();
    expect(calls).toEqual([['c7', 'edit', 'train(model, epochs=5)']]);
  });

  it('shows the safety gate concerns', () => {
    const { p } = panel();
    p.show({ ...request, concerns: ['imports subprocess, which starts processes or shell commands'] });
    expect(p.node.querySelector('.jp-MedAgent-concerns')!.textContent).toBe(
      'Safety gate: this cell imports subprocess, which starts processes or shell commands'
    );
  });

  it('ignores clicks when nothing waits', async () => {
    const { p, calls } = panel();
    button(p, 'run').click();
    await Promise.resolve();
    expect(calls).toEqual([]);
  });
});
