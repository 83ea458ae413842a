// Runs the page knows about, by id, whatever brings their events: the server's long poll (sidebar runs) or a
// kernel comm (%%medagent runs). A view subscribes to a run and gets every event so far, then each new one.
import { AgentEvent } from './events';

export type Listener = (event: AgentEvent) => void;

export class RunChannel {
  readonly events: AgentEvent[] = [];
  followed = false; // this page receives the run's events (its comm opened here, or the server answers for it)
  private listeners = new Set<Listener>();

  constructor(readonly runId: string) {}

  push(event: AgentEvent): void {
    this.events.push(event);
    this.listeners.forEach(listener => listener(event));
  }

  subscribe(listener: Listener): () => void {
    this.events.forEach(listener);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get done(): boolean {
    return this.events.some(e => e.kind === 'finished');
  }
}

export class RunHub {
  private channels = new Map<string, RunChannel>();

  channel(runId: string): RunChannel {
    let channel = this.channels.get(runId);
    if (!channel) {
      channel = new RunChannel(runId);
      this.channels.set(runId, channel);
    }
    return channel;
  }

  has(runId: string): boolean {
    return this.channels.has(runId) && this.channels.get(runId)!.events.length > 0;
  }
}
