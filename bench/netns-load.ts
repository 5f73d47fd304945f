// The bench's load client run inside a guest's network namespace (host.ts starts it with
// `nsenter --net=NS -- node dist/bench/netns-load.js ...`): one autocannon run against
// 127.0.0.1:PORT there, the exact response times written to --out (float64, little-endian), the
// counts printed as one JSON line.
//   node dist/bench/netns-load.js --port 812 --connections 50 --duration 5 --out FILE [--close]
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { autocannonRun } from './load.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '812' },
    connections: { type: 'string', default: '1' },
    duration: { type: 'string', default: '5' },
    out: { type: 'string' },
    close: { type: 'boolean', default: false },
  },
});
if (!values.out) throw new Error('--out FILE is required');
const run = await autocannonRun(Number(values.port), Number(values.connections), Number(values.duration), values.close);
fs.writeFileSync(values.out, Buffer.from(Float64Array.from(run.lat).buffer));
process.stdout.write(`${JSON.stringify({ msg: 'done', requests: run.lat.length, durationS: run.durationS, errors: run.errors, timeouts: run.timeouts, non2xx: run.non2xx })}\n`);
process.exit(0);
