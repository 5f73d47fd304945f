// At most N tasks at once, the rest waiting in the order they came. The host daemon refreshes its
// guests through it: each refresh holds the guest's SQLite connection (~230 KB of the C heap, and
// its page cache) until it ends, and 50 guests refreshed at once left the C heap 11 MB larger for
// good, the freed blocks scattered where malloc cannot give them back (bench/README.md).
export class Slots {
  private busy = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly size: number) {}

  /** Run task once a slot is free; its slot is freed when it settles, however it settles. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.busy >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.busy++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.busy--;
    }
  }
}
