// The %%medagent magic's output: the same timeline as the sidebar, fed live by the kernel comm while the run goes
// on, and drawn from the events the output keeps once it is over (so it shows again after a reload).
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { AgentEvent } from './events';
import { RunHub } from './runs';
import { Timeline } from './timeline';

export const RUN_MIME = 'application/vnd.medagent.run+json';

interface IRunData {
  run_id: string;
  done: boolean;
  notebook?: string | null; // where the refined notebook will be written
  events?: AgentEvent[];
}

// How long a live run's first event may take to arrive on the comm before the page takes it for a run it
// cannot follow: one that was started before the page was (re)loaded.
const FOLLOW_GRACE_MS = 4000;

export class RunOutput extends Widget implements IRenderMime.IRenderer {
  private runId: string | null = null;
  private timeline: Timeline;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private hub: RunHub,
    openPath: (path: string) => void
  ) {
    super();
    this.addClass('jp-MedAgent-runOutput');
    this.timeline = new Timeline(openPath);
    this.node.append(this.timeline.spendNode, this.timeline.node);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = model.data[RUN_MIME] as unknown as IRunData;
    this.node.dataset.runId = data.run_id;
    if (this.runId !== data.run_id) {
      this.runId = data.run_id;
      this.unsubscribe?.();
      this.timeline.clear();
      if (!data.done || this.hub.has(data.run_id)) {
        // Live (or seen live on this page): the comm's events, all of them so far and each new one.
        this.unsubscribe = this.hub.channel(data.run_id).subscribe(event => this.timeline.add(event));
        if (!data.done) {
          this.sayIfUnfollowed(data);
        }
        return;
      }
    } else if (!data.done || this.hub.has(data.run_id)) {
      return; // an update of the plain-text log: the live timeline already has it
    }
    // A finished run this page did not follow (the notebook was reopened): the events the output kept.
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.timeline.clear();
    (data.events || []).forEach(event => this.timeline.add(event));
  }

  // A run the kernel still works on but whose comm spoke to an earlier page: say so plainly, and where its result
  // will appear, instead of an empty timeline.
  private sayIfUnfollowed(data: IRunData): void {
    const runId = data.run_id;
    setTimeout(() => {
      if (this.isDisposed || this.runId !== runId || this.hub.channel(runId).followed) {
        return;
      }
      const where = data.notebook
        ? `its refined notebook will be written to ${data.notebook}`
        : 'its refined notebook will be written next to this notebook';
      this.node.prepend(
        h(
          'div',
          { className: 'jp-MedAgent-unfollowed', role: 'status' },
          'This run is still going on in the kernel, but it started before this page was loaded, so its progress ' +
            `cannot be shown here. When it ends, ${where}, and this cell's output shows the whole run ` +
            'once the notebook is reopened. The kernel is busy with it until then.'
        )
      );
    }, FOLLOW_GRACE_MS);
  }

  dispose(): void {
    this.unsubscribe?.();
    super.dispose();
  }
}

export function runOutputFactory(hub: RunHub, openPath: (path: string) => void): IRenderMime.IRendererFactory {
  return {
    safe: true, // text goes in as text, images as data: URLs
    mimeTypes: [RUN_MIME],
    defaultRank: 0,
    createRenderer: () => new RunOutput(hub, openPath)
  };
}
