// Mirrors the agent's cells into the open notebook: new cells in order (below the cursor, or below the
// %%medagent cell that started the run), edits in place, outputs as they arrive while a cell runs, skipped and
// user-edited cells marked. The notebook follows the newest cell. The browser never executes these cells: the
// kernel already has.
import { Cell, ICodeCellModel } from '@jupyterlab/cells';
import { Notebook } from '@jupyterlab/notebook';

export const AGENT_CELL_CLASS = 'jp-MedAgent-agentCell';
export const SKIPPED_CELL_CLASS = 'jp-MedAgent-skippedCell';
export const EDITED_CELL_CLASS = 'jp-MedAgent-editedCell';

const SKIPPED_OUTPUT = { output_type: 'stream', name: 'stdout', text: 'Skipped by you: this cell was not run.\n' };

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

export class NotebookMirror {
  private lastIndex: number | null = null;

  // `anchor` gives the index of the cell the run's cells go below (the magic's own cell), or -1.
  constructor(
    private notebook: Notebook,
    private runId: string,
    private anchor: () => number = () => -1
  ) {}

  apply(event: { kind: string; [key: string]: any }): void {
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
    return (anchor >= 0 ? anchor : Math.max(this.notebook.activeCellIndex, -1)) + 1;
  }

  private write(cellId: string, source: string, byUser: boolean): void {
    const existing = this.indexOf(cellId);
    if (existing >= 0) {
      // The agent is fixing this cell (or the user edited it): replace its code rather than piling up copies.
      this.notebook.widgets[existing].model.sharedModel.setSource(source);
      this.update(cellId, { edited_by_user: byUser });
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

  private outputs(cellId: string, outputs: any[], final: boolean): void {
    const index = this.indexOf(cellId);
    if (index < 0) {
      return;
    }
    const cell = this.notebook.widgets[index];
    markCell(cell);
    const model = cell.model as ICodeCellModel;
    model.outputs.clear();
    for (const output of outputs) {
      model.outputs.add(output);
    }
    // The prompt number the kernel gave, when an output carries it (execute_result does).
    const counted = outputs.find(o => typeof o.execution_count === 'number');
    if (final && counted) {
      model.executionCount = counted.execution_count;
    }
    cell.toggleClass('jp-MedAgent-runningCell', !final);
  }
}
