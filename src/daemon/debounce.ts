// Coalesce bursts of file-system events into one call: fire `quietMs` after the last event, but
// no later than `maxWaitMs` after the first. One-shot timers only, armed by events; nothing runs
// while nothing happens.
export interface Debouncer {
  trigger(reason: string): void;
  cancel(): void;
}

export function debounce(fn: (reasons: string[]) => void, quietMs: number, maxWaitMs: number): Debouncer {
  let timer: NodeJS.Timeout | undefined;
  let first = 0;
  let reasons: string[] = [];
  const fire = (): void => {
    timer = undefined;
    const batch = reasons;
    reasons = [];
    fn(batch);
  };
  return {
    trigger(reason) {
      const now = Date.now();
      if (reasons.length === 0) first = now;
      if (reasons.length < 50) reasons.push(reason);
      if (timer) clearTimeout(timer);
      timer = setTimeout(fire, Math.max(0, Math.min(quietMs, first + maxWaitMs - now)));
    },
    cancel() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      reasons = [];
    },
  };
}
