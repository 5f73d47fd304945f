// Refreshes never overlap: a request while one runs is coalesced into a single follow-up run.
/** Serialises refreshes; requests during a run coalesce into one more run. */
export class RefreshQueue {
  private running: Promise<void> | undefined;
  private pending: { trigger: string; geniGet: boolean } | undefined;

  constructor(
    private readonly run: (trigger: string, geniGet: boolean) => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  request(trigger: string, geniGet: boolean): Promise<void> {
    if (this.running) {
      this.pending = { trigger: this.pending ? `${this.pending.trigger}+${trigger}` : trigger, geniGet: geniGet || (this.pending?.geniGet ?? false) };
      return this.running;
    }
    this.running = (async () => {
      let next: { trigger: string; geniGet: boolean } | undefined = { trigger, geniGet };
      while (next) {
        this.pending = undefined;
        try {
          await this.run(next.trigger, next.geniGet);
        } catch (err) {
          this.onError(err);
        }
        next = this.pending;
      }
      this.running = undefined;
    })();
    return this.running;
  }

  /** Resolves when no refresh is running. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }
}
