// Mirrors the agent's cells into the open notebook: new cells in order below the cursor, edits in place,
// outputs as the server's kernel produced them. The browser never executes them: the server already has.
import { ICodeCellModel } from '@jupyterlab/cells';
import { Notebook } from '@jupyterlab/notebook';

export const AGENT_CELL_CLASS = 'jp-MedAgent-agentCell';

export class NotebookMirror {
  private lastIndex: number | null = null;

  constructor(private notebook: Notebook, private runId: string) {}

  apply(event: { kind: string; [key: string]: any }): void {
    if (event.kind === 'cell_written') {
      this.write(event.cell_id, event.source);
    } else if (event.kind === 'cell_executed') {
      this.outputs(event.cell_id, event.outputs);
    }
  }

  private indexOf(cellId: string): number {
    return this.notebook.widgets.findIndex(cell => {
      const meta = cell.model.getMetadata('medagent') as any;
      return meta && meta.cell_id === cellId && meta.run_id === this.runId;
    });
  }

  private write(cellId: string, source: string): void {
    const existing = this.indexOf(cellId);
    if (existing >= 0) {
      // The agent is fixing this cell: replace its code rather than piling up copies.
      this.notebook.widgets[existing].model.sharedModel.setSource(source);
      return;
    }
    const model = this.notebook.model;
    if (!model) {
      return;
    }
    const index = this.lastIndex === null ? Math.max(this.notebook.activeCellIndex, -1) + 1 : this.lastIndex + 1;
    model.sharedModel.insertCell(index, {
      cell_type: 'code',
      source,
      metadata: { medagent: { cell_id: cellId, run_id: this.runId, written_by: 'agent' } }
    });
    this.lastIndex = index;
    this.notebook.widgets[index]?.addClass(AGENT_CELL_CLASS);
  }

  private outputs(cellId: string, outputs: any[]): void {
    const index = this.indexOf(cellId);
    if (index < 0) {
      return;
    }
    const cell = this.notebook.widgets[index];
    cell.addClass(AGENT_CELL_CLASS);
    const model = cell.model as ICodeCellModel;
    model.outputs.clear();
    for (const output of outputs) {
      model.outputs.add(output);
    }
    // The prompt number the kernel gave, when an output carries it (execute_result does).
    const counted = outputs.find(o => typeof o.execution_count === 'number');
    if (counted) {
      model.executionCount = counted.execution_count;
    }
  }
}
