// Generated from jupyter_medagent/contracts/events.py by scripts/generate_event_types.py: do not edit.
// Run `python scripts/generate_event_types.py` after changing an event
// (tests/lab/test_event_types.py fails while this file is stale).

export interface IEventBase {
  seq: number; // its place in the run's events (the server and the magic's comm number them)
}

/** What the agent intends to do, as short human-readable steps. */
export interface IPlanEvent extends IEventBase {
  kind: 'plan';
  steps: string[];
  rationale?: string;
}

/** Narration from the agent (text a model streamed, or a planner's note). */
export interface IMessageEvent extends IEventBase {
  kind: 'message';
  text: string;
}

/** A piece of narration while a model is still streaming its reply (a Message with the whole text follows). */
export interface IMessageDeltaEvent extends IEventBase {
  kind: 'message_delta';
  text: string;
}

/** A cell was added, or an existing one replaced (``replaces`` is its id). */
export interface ICellWrittenEvent extends IEventBase {
  kind: 'cell_written';
  cell_id: string;
  source: string;
  note: string;
  replaces?: string | null;
  by_user?: boolean;
}

/** The user chose not to run this cell (approve mode); it stays in the notebook, marked, and never ran. */
export interface ICellSkippedEvent extends IEventBase {
  kind: 'cell_skipped';
  cell_id: string;
}

/** A cell ran. ``outputs`` are nbformat output dicts; ``error`` is None on success. */
export interface ICellExecutedEvent extends IEventBase {
  kind: 'cell_executed';
  cell_id: string;
  outputs: Record<string, any>[];
  error: Record<string, any> | null;
  duration_s: number;
}

/** A running cell's outputs so far (sent a few times a second while it runs; CellExecuted has the final ones). */
export interface ICellOutputEvent extends IEventBase {
  kind: 'cell_output';
  cell_id: string;
  outputs: Record<string, any>[];
  elapsed_s: number;
}

/** How far a long piece of work is: a training loop (``what`` = "training", from the cell's progress report) or the verification re-run ("verification", cells done of all). */
export interface IProgressEvent extends IEventBase {
  kind: 'progress';
  what: string;
  done: number;
  total: number;
  elapsed_s: number;
  eta_s?: number | null;
  text?: string;
  cell_id?: string | null;
}

/** An error or a finding is being fixed; ``rule`` names the repair rule that fired. */
export interface IRepairEvent extends IEventBase {
  kind: 'repair';
  cell_id: string | null;
  rule: string;
  reason: string;
}

/** A rendered montage (PNG) produced by a cell, ready to be judged. */
export interface IRenderEvent extends IEventBase {
  kind: 'render';
  cell_id: string;
  png: string;
  caption?: string;
}

/** A judge's verdict on the current state: the latest findings report of each scope and the images rendered since the last verdict. ``findings`` use the quantitative judge's kind names. ``not_checked``: the judge had no evidence (no cell has reported findings and none rendered an image since the last verdict, e.g. the user skipped the checking cell), so it says nothing about the data. */
export interface IVerdictEvent extends IEventBase {
  kind: 'verdict';
  judge: string;
  verdict: 'ok' | 'flag' | 'not_checked';
  findings: Record<string, any>[];
  cell_id?: string | null;
  confidence?: number | null;
  reason?: string;
}

/** Tokens and money for one model call, plus the running totals. */
export interface IUsageEvent extends IEventBase {
  kind: 'usage';
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens?: number;
  cache_write_tokens?: number;
  cost_usd?: number;
  total_tokens?: number;
  total_cost_usd?: number;
}

/** Approve-each-cell mode: the loop waits for the approver's decision on this cell. */
export interface IApprovalRequestEvent extends IEventBase {
  kind: 'approval_request';
  cell_id: string;
  source: string;
  concerns?: string[];
}

/** What the run found, shown before the verification re-run (which takes about as long as the run). */
export interface IResultsEvent extends IEventBase {
  kind: 'results';
  summary: string;
  headline: Record<string, any>[];
  metrics?: Record<string, any>;
}

/** The run ended. ``status``: solved, failed or stopped; ``reason`` says why in plain words. ``verified``: "yes" (re-ran and reproduced the reported numbers), "no" (did not re-run), "not reproduced" (re-ran to other numbers), "skipped" (the user chose not to re-run) or "not run" (nothing to verify). */
export interface IFinishedEvent extends IEventBase {
  kind: 'finished';
  status: 'solved' | 'failed' | 'stopped';
  reason: string;
  summary?: string;
  metrics?: Record<string, any>;
  notebook?: string | null;
  reexecuted_ok?: boolean | null;
  headline?: Record<string, any>[];
  verified?: string;
}

export type AgentEvent =
  | IPlanEvent
  | IMessageEvent
  | IMessageDeltaEvent
  | ICellWrittenEvent
  | ICellSkippedEvent
  | ICellExecutedEvent
  | ICellOutputEvent
  | IProgressEvent
  | IRepairEvent
  | IRenderEvent
  | IVerdictEvent
  | IUsageEvent
  | IApprovalRequestEvent
  | IResultsEvent
  | IFinishedEvent;

export type AgentEventKind = AgentEvent['kind'];
