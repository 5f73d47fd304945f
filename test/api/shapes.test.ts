// src/api/shapes.ts: a full collection among the first few responses no longer turns every later
// response into a dictionary (the shared host's daemon collects after each guest's refresh).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { projectDir } from '../helpers/fixtures.js';

const shapesModule = pathToFileURL(path.join(projectDir, 'dist', 'src', 'api', 'shapes.js')).href;

/** Six responses, a full collection, then 50 more: how many of those were in fast mode. */
function fastAfterGc(settle: boolean): { fast: number; total: number } {
  const code = `
    const http = (await import('node:http')).default;
    if (${settle}) (await import(${JSON.stringify(shapesModule)})).settleHttpShapes();
    let fast = 0, total = 0;
    const server = http.createServer((req, res) => { total++; if (isFast(res)) fast++; res.end('ok'); });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const get = () => new Promise((r, j) => http.get({ port: server.address().port, host: '127.0.0.1', agent: false }, (x) => { x.resume(); x.on('end', r); }).on('error', j));
    for (let i = 0; i < 6; i++) await get();
    await new Promise((r) => setImmediate(r));
    gc(); gc();
    fast = 0; total = 0;
    for (let i = 0; i < 50; i++) await get();
    server.close();
    process.stdout.write(JSON.stringify({ fast, total }));`;
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', '--allow-natives-syntax', '--input-type=module', '-e', `const isFast = (o) => %HasFastProperties(o);\n${code}`],
    { encoding: 'utf8', cwd: projectDir },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { fast: number; total: number };
}

test('responses keep fast properties after a full collection among the first ones', (t) => {
  const without = fastAfterGc(false);
  t.log(`without the settling: ${without.fast}/${without.total} fast`);
  t.deepEqual(fastAfterGc(true), { fast: 50, total: 50 });
});
