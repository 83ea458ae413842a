// Mirrors the agent's cells into the open notebook: new cells in order (below the cursor, or below the
// %%medagent cell that started the run), edits in place, outputs as they arrive while a cell runs, skipped and
// user-edited cells marked. The notebook follows the newest cell. The browser never executes these cells: the
// kernel already has.
import { Cell, ICodeCellModel } from '@jupyterlab/cells';
import { Notebook } from '@jupyterlab/notebook';

import { AgentEvent } from './events';

export const AGENT_CELL_CLASS = 'jp-MedAgent-agentCell';
export const SKIPPED_CELL_CLASS = 'jp-MedAgent-skippedCell';
export const EDITED_CELL_CLASS = 'jp-MedAgent-editedCell';

const SKIPPED_OUTPUT = { output_type: 'stream', name: 'stdout', text: 'Skipped by you: this cell was not run.\n' };
const STOPPED_OUTPUT = { output_type: 'stream', name: 'stdout', text: 'Stopped by you while it ran.\n' };
export const STALE_CELL_CLASS = 'jp-MedAgent-staleCell';

// Marks for a cell from its metadata: what the agent wrote keeps its blue edge after a reload.
export function markCell(cell: Cell): void {
  const meta = cell.model.getMetadata('medagent') as any;
  if (meta && meta.written_by === 'agent') {
    cell.addClass(AGENT_CELL_CLASS);
    cell.toggleClass(SKIPPED_CELL_CLASS, !!meta.skipped);
    cell.toggleClass(EDITED_CELL_CLASS, !!meta.edited_by_user);
  }
}

export function markAgentCells(notebook: Notebook): void {
  notebook.widgets.forEach(markCell);
}

// The index of the last cell any agent run wrote into the notebook, or -1.
export function lastAgentCellIndex(notebook: Notebook): number {
  for (let index = notebook.widgets.length - 1; index >= 0; index--) {
    const meta = notebook.widgets[index].model.getMetadata('medagent') as any;
    if (meta && meta.written_by === 'agent') {
      return index;
    }
  }
  return -1;
}

export class NotebookMirror {
  private lastIndex: number | null = null;
  // The agent's newest code for a cell, held back until it runs: in approve mode the user may still edit or skip
  // it, and the notebook shows only what the user let run.
  private pending: { cellId: string; source: string } | null = null;

  // `anchor` gives the index of the cell the run's cells go below (the magic's own cell), or -1.
  constructor(
    private notebook: Notebook,
    private runId: string,
    private anchor: () => number = () => -1
  ) {}

  apply(event: AgentEvent): void {
    if (event.kind === 'cell_written' && !event.by_user) {
      this.flush();
      this.pending = { cellId: event.cell_id, source: event.source };
      return;
    }
    if (event.kind === 'approval_request' && this.pending?.cellId === event.cell_id) {
      return; // waiting for the user's decision
    }
    if (event.kind === 'cell_written' || event.kind === 'cell_skipped') {
      if (this.pending?.cellId === event.cell_id) {
        // Edited by the user: their code goes in. Skipped: what they declined is shown, marked as not run.
        if (event.kind === 'cell_skipped') {
          this.flush();
        }
        this.pending = null;
      }
    } else {
      this.flush();
    }
    switch (event.kind) {
      case 'cell_written':
        this.write(event.cell_id, event.source, !!event.by_user);
        break;
      case 'cell_output':
        this.outputs(event.cell_id, event.outputs, false);
        break;
      case 'cell_executed':
        this.outputs(event.cell_id, event.outputs, true);
        break;
      case 'cell_skipped':
        this.update(event.cell_id, { skipped: true });
        this.outputs(event.cell_id, [SKIPPED_OUTPUT], false);
        break;
    }
  }

  private flush(): void {
    if (this.pending) {
      const { cellId, source } = this.pending;
      this.pending = null;
      this.write(cellId, source, false);
    }
  }

  private indexOf(cellId: string): number {
    return this.notebook.widgets.findIndex(cell => {
      const meta = cell.model.getMetadata('medagent') as any;
      return meta && meta.cell_id === cellId && meta.run_id === this.runId;
    });
  }

  private update(cellId: string, changes: Record<string, unknown>): void {
    const index = this.indexOf(cellId);
    if (index < 0) {
      return;
    }
    const cell = this.notebook.widgets[index];
    cell.model.setMetadata('medagent', { ...(cell.model.getMetadata('medagent') as any), ...changes });
    markCell(cell);
  }

  private insertionIndex(): number {
    if (this.lastIndex !== null) {
      return this.lastIndex + 1;
    }
    const anchor = this.anchor();
    if (anchor >= 0) {
      return anchor + 1;
    }
    // A sidebar run continues below the last agent cell (an earlier run's, after the notebook was reopened), so
    // Run All runs the runs in the order they were made; in a notebook without one, below the cursor.
    const last = lastAgentCellIndex(this.notebook);
    return (last >= 0 ? last : Math.max(this.notebook.activeCellIndex, -1)) + 1;
  }

  private write(cellId: string, source: string, byUser: boolean): void {
    const existing = this.indexOf(cellId);
    if (existing >= 0) {
      // The agent is fixing this cell (or the user edited it): replace its code rather than piling up copies.
      this.notebook.widgets[existing].model.sharedModel.setSource(source);
      this.update(cellId, { edited_by_user: byUser });
      this.markStaleBelow(existing);
      // After a reload the run's cells are already there: new ones go below the last of them, not the cursor.
      this.lastIndex = Math.max(this.lastIndex ?? -1, existing);
      return;
    }
    const model = this.notebook.model;
    if (!model) {
      return;
    }
    const index = this.insertionIndex();
    model.sharedModel.insertCell(index, {
      cell_type: 'code',
      source,
      metadata: { medagent: { cell_id: cellId, run_id: this.runId, written_by: 'agent' } }
    });
    this.lastIndex = index;
    const cell = this.notebook.widgets[index];
    if (cell) {
      markCell(cell);
      this.follow(index);
    }
  }

  // The newest cell becomes the active one and is scrolled into view, so the next run continues below it.
  private follow(index: number): void {
    this.notebook.activeCellIndex = index;
    void this.notebook.scrollToCell(this.notebook.widgets[index], 'smart');
  }

  // This run's cells below a rewritten one show what the old code made until they run again.
  private markStaleBelow(index: number): void {
    this.notebook.widgets.slice(index + 1).forEach(cell => {
      const meta = cell.model.getMetadata('medagent') as any;
      if (meta && meta.run_id === this.runId && (cell.model as ICodeCellModel).outputs?.length) {
        cell.addClass(STALE_CELL_CLASS);
      }
    });
  }

  private outputs(cellId: string, outputs: any[], final: boolean): void {
    const index = this.indexOf(cellId);
    if (index < 0) {
      return;
    }
    const cell = this.notebook.widgets[index];
    markCell(cell);
    cell.removeClass(STALE_CELL_CLASS);
    const model = cell.model as ICodeCellModel;
    model.outputs.clear();
    for (const output of outputs) {
      model.outputs.add(
        output.output_type === 'error' && output.ename === 'KeyboardInterrupt' ? STOPPED_OUTPUT : output
      );
    }
    // The prompt number the kernel gave, when an output carries it (execute_result does).
    const counted = outputs.find(o => typeof o.execution_count === 'number');
    if (final && counted) {
      model.executionCount = counted.execution_count;
    }
    cell.toggleClass('jp-MedAgent-runningCell', !final);
  }
}
