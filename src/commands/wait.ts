// sliceid wait: block until /etc/slicename and both GIDs are written and the daemon's API answers
// (exit 0), or until --timeout passes (exit 1, saying what is missing). Cheap while waiting: inotify
// on the directories of the files and of the pidfile (the nearest existing ancestor while one does
// not exist yet), no polling; the API is asked once each time the pidfile appears or changes (the
// daemon writes it after its API listens).
import fs from 'node:fs';
import { request as httpRequest } from '../builtins.js';
import path from 'node:path';
import { livePid } from '../fs/pidfile.js';
import { command, setup, UsageError } from './common.js';

const USAGE = 'usage: sliceid wait [--timeout SECONDS] [--root DIR] [--config FILE]\n';

const GET_SSH_KEYS = "<?xml version='1.0'?>\n<methodCall><methodName>GetSSHKeys</methodName><params></params></methodCall>";

type Target = { socket: string } | { host: string; port: number };

/** One GetSSHKeys call; resolves with undefined when it answered, else what went wrong. */
function probe(target: Target): Promise<string | undefined> {
  return new Promise((resolve) => {
    const where = 'socket' in target ? { socketPath: target.socket } : { host: target.host, port: target.port };
    const req = httpRequest({ ...where, method: 'POST', path: '/', headers: { 'content-type': 'text/xml' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('<methodResponse>') && !body.includes('<fault>') ? undefined : `HTTP ${res.statusCode}`));
    });
    req.setTimeout(2000, () => req.destroy(new Error('no answer within 2 s')));
    req.on('error', (err) => resolve(err.message));
    req.end(GET_SSH_KEYS);
  });
}

/** Watch `dir` for changes to its entries; while it does not exist, its nearest existing ancestor. */
function watchDir(dir: string, onChange: () => void): () => void {
  let watcher: fs.FSWatcher | undefined;
  let watching: { dir: string; ino: number } | undefined;
  const arm = (): void => {
    let at = dir;
    while (!fs.existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
    let ino: number;
    try {
      ino = fs.statSync(at).ino;
    } catch {
      return;
    }
    if (watcher && watching?.dir === at && watching.ino === ino) return;
    watcher?.close();
    watching = { dir: at, ino };
    try {
      watcher = fs.watch(at, { persistent: true }, () => {
        arm();
        onChange();
      });
      watcher.on('error', () => {
        watcher?.close();
        watcher = undefined;
        arm();
        onChange();
      });
    } catch {
      watcher = undefined;
    }
  };
  arm();
  return () => watcher?.close();
}

export const main = command(USAGE, { timeout: { type: 'string' } }, false, async ({ values }) => {
  let timeoutS: number | undefined;
  if (values.timeout !== undefined) {
    timeoutS = Number(values.timeout);
    if (!/^\d+(\.\d+)?$/.test(values.timeout) || !Number.isFinite(timeoutS)) throw new UsageError(`--timeout ${values.timeout}: not a number of seconds`);
  }
  const { paths, config } = setup(values);
  const socket = config.api.socket === null ? paths.socket : config.api.socket || undefined;
  const target: Target = socket ? { socket } : { host: config.api.listen[0] ?? '127.0.0.1', port: config.api.port };
  const shownTarget = 'socket' in target ? target.socket : `${target.host}:${target.port}`;
  const files = [paths.slicename, paths.sliceGid, paths.nodeGid];

  let api: { pid: number; mtimeMs: number; problem: string | undefined } | undefined;
  let probing = false;
  let again = false;
  let missing: string[] = [];

  return new Promise<number>((resolve) => {
    const closers: Array<() => void> = [];
    let timer: NodeJS.Timeout | undefined;
    let expired = false;
    let announced = false;
    let finished = false;
    const done = (code: number, text: string): void => {
      if (finished) return;
      finished = true;
      for (const c of closers) c();
      if (timer) clearTimeout(timer);
      (code === 0 ? process.stdout : process.stderr).write(text);
      resolve(code);
    };

    const check = async (): Promise<void> => {
      if (probing) {
        again = true;
        return;
      }
      probing = true;
      try {
        do {
          again = false;
          missing = [];
          for (const f of files) {
            let size = 0;
            try {
              size = fs.statSync(f).size;
            } catch {
              missing.push(`${f} is missing`);
              continue;
            }
            if (size === 0) missing.push(`${f} is empty`);
          }
          const pid = livePid(paths.pidFile);
          if (pid === undefined) {
            api = undefined;
            missing.push(`the daemon is not running (no live pid in ${paths.pidFile})`);
          } else {
            let mtimeMs = 0;
            try {
              mtimeMs = fs.statSync(paths.pidFile).mtimeMs;
            } catch {
              // removed since: the next event says so
            }
            if (!api || api.pid !== pid || api.mtimeMs !== mtimeMs) api = { pid, mtimeMs, problem: await probe(target) };
            if (api.problem) missing.push(`the API does not answer at ${shownTarget}: ${api.problem}`);
          }
        } while (again);
      } finally {
        probing = false;
      }
      if (missing.length === 0) {
        const name = fs.readFileSync(paths.slicename, 'utf8').trim();
        done(0, `sliceid is ready: slice ${name}, the API answers at ${shownTarget}\n`);
      } else if (expired) {
        fail();
      } else if (!announced && timeoutS !== 0) {
        announced = true;
        process.stderr.write(`sliceid wait: waiting for: ${missing.join('; ')}\n`);
      }
    };
    const fail = (): void => done(1, `sliceid wait: not ready after ${timeoutS} s: ${missing.join('; ')}\n`);
    const onChange = (): void => void check();
    for (const dir of new Set([...files, paths.pidFile].map((f) => path.dirname(f)))) closers.push(watchDir(dir, onChange));
    if (timeoutS !== undefined) {
      // At the limit: the answer of a check in progress (an API call) still counts.
      timer = setTimeout(() => {
        expired = true;
        if (!probing) fail();
      }, Math.min(timeoutS * 1000, 2 ** 31 - 1));
    }
    void check();
  });
});
