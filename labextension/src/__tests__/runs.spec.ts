import { RunHub } from '../runs';

describe('RunHub', () => {
  it('gives a late subscriber every event so far, then the new ones', () => {
    const hub = new RunHub();
    const channel = hub.channel('r1');
    channel.push({ kind: 'plan', seq: 0, steps: [] });
    const seen: string[] = [];
    const stop = hub.channel('r1').subscribe(e => seen.push(e.kind));
    channel.push({ kind: 'finished', seq: 1, status: 'solved', reason: 'done' });
    stop();
    channel.push({ kind: 'message', seq: 2, text: 'after the end' });
    expect(seen).toEqual(['plan', 'finished']);
    expect(hub.channel('r1').done).toBe(true);
    expect(hub.has('r1')).toBe(true);
    expect(hub.has('r2')).toBe(false);
  });
});
