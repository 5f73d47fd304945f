import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { startWatcher } from '../../src/daemon/watch.js';
import { silentLogger } from '../../src/log.js';
import { tempDir } from '../helpers/fixtures.js';

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

test("a user's .ssh is watched for authorized_keys only: other names and symlinks out are neither followed nor reported", async (t) => {
  const root = tempDir();
  const ssh = path.join(root, 'home/u/.ssh');
  const outside = path.join(root, 'rootonly');
  fs.mkdirSync(ssh, { recursive: true });
  fs.mkdirSync(outside, { mode: 0o700 });
  const file = path.join(ssh, 'authorized_keys');
  fs.writeFileSync(file, '');
  const events: string[] = [];
  const w = startWatcher([ssh, file], (event, f) => events.push(`${event} ${f}`), silentLogger);
  t.teardown(() => w.close());
  await w.ready;
  fs.symlinkSync(outside, path.join(ssh, 'root'));
  fs.writeFileSync(path.join(ssh, 'SECRET-NAME'), 'x');
  fs.writeFileSync(path.join(outside, 'ROOT-FILE'), 'x');
  fs.appendFileSync(file, 'k\n');
  t.true(await until(() => events.some((e) => e.endsWith(file)), 5000), events.join('\n'));
  // Anything else would have arrived with (or before) it; give a straggler the same chance: a
  // second change of the file (chokidar drops a change right after another, so write until seen).
  const seen = events.length;
  let got = false;
  for (let i = 0; i < 10 && !got; i++) {
    fs.appendFileSync(file, 'k\n');
    got = await until(() => events.slice(seen).some((e) => e.endsWith(file)), 500);
  }
  t.true(got, events.join('\n'));
  t.deepEqual(events.filter((e) => !e.endsWith(file)), []);
});
