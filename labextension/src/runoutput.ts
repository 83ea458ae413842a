// The %%medagent magic's output: the same timeline as the sidebar, fed live by the kernel comm while the run goes
// on, and drawn from the events the output keeps once it is over (so it shows again after a reload).
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { IAgentEvent } from './events';
import { RunHub } from './runs';
import { Timeline } from './timeline';

export const RUN_MIME = 'application/vnd.medagent.run+json';

interface IRunData {
  run_id: string;
  done: boolean;
  events?: IAgentEvent[];
}

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
