// The agent's events as the server and the magic's comm send them: types generated from jupyter_medagent/contracts/events.py.
import { AgentEvent } from './events.generated';

export * from './events.generated';

export interface IEventsReply {
  events: AgentEvent[];
  next: number;
  done: boolean;
  status: string;
}

export interface IBackend {
  selector: string;
  label: string;
  available: boolean;
  reason: string | null;
}

export type Decision = 'run' | 'skip' | 'edit' | 'stop';

// A run as GET /medagent/runs lists it.
export interface IRunSummary {
  run_id: string;
  notebook_path: string;
  request: string;
  data_dir: string | null;
  backend: string | null;
  mode: string;
  isolated: boolean;
  verify: boolean;
  options?: Record<string, string | number | boolean | string[] | null>; // RunOptions, as the run got them
  status: string;
  notebook: string | null;
}
