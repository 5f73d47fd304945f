import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { defaultConfig, type Config } from '../../src/config.js';
import { nodePaths } from '../../src/paths.js';
import { emulabFacts, readFirstLine } from '../../src/sources/emulab.js';
import { gatherFacts, geniGetFacts } from '../../src/sources/gather.js';
import { hostnameFacts } from '../../src/sources/hostname.js';
import { copyTree, goodTrees, tempDir } from '../helpers/fixtures.js';

const tree = (name: string) => goodTrees().filter((t) => t.name === name).at(-1)!;

function writeFile(file: string, text: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode });
}

test('host name: <root>/etc/hostname under a root prefix, the kernel host name at "/"', (t) => {
  const root = tempDir();
  const paths = nodePaths(root);
  t.deepEqual(hostnameFacts(paths), {});
  writeFile(paths.hostnameFile, '  Node2.Exp2.Proj2.wisc.cloudlab.us \nignored\n');
  t.deepEqual(hostnameFacts(paths), { hostname: { value: 'Node2.Exp2.Proj2.wisc.cloudlab.us', where: { source: paths.hostnameFile, line: 1 } } });
  t.deepEqual(hostnameFacts(nodePaths('/'), { osHostname: () => 'node0.e.p.emulab.net' }), {
    hostname: { value: 'node0.e.p.emulab.net', where: { source: 'host name (gethostname)' } },
  });
});

test('Emulab boot files: first line trimmed, file and line remembered, mydomain is the domain', (t) => {
  const root = copyTree(tree('emulab-pnode').source);
  const paths = nodePaths(root);
  const facts = emulabFacts(paths);
  t.is(facts.nickname?.value, fs.readFileSync(path.join(paths.bootDir, 'nickname'), 'utf8').trim());
  t.deepEqual(facts.nickname?.where, { source: path.join(paths.bootDir, 'nickname'), line: 1 });
  t.is(facts.domain?.value, 'emulab.net');
  t.truthy(facts.nodeuuid);
  t.is(facts.vmname, undefined);
  t.is(readFirstLine(path.join(root, 'nope')), undefined);
  const empty = path.join(tempDir(), 'empty');
  fs.writeFileSync(empty, '\n\nsecond');
  t.is(readFirstLine(empty), undefined);
  t.throws(() => readFirstLine(root), { code: 'EISDIR' });
});

test('geni-get: slice_urn and client_id from <root>/usr/bin/geni-get; failing means no fact', async (t) => {
  const pg = tree('pg-vnode');
  const root = copyTree(pg.source);
  const paths = nodePaths(root);
  const facts = await geniGetFacts(paths, { timeoutMs: 5000 });
  t.is(facts.sliceUrn!.value, pg.expected.slice.urn);
  t.regex(facts.sliceUrn!.where.source, /^geni-get slice_urn \(/);
  t.truthy(facts.clientId);
  writeFile(paths.geniGet[0]!, '#!/bin/sh\necho boss unreachable >&2\nexit 1\n', 0o755);
  t.deepEqual(await geniGetFacts(paths, { timeoutMs: 5000 }), {});
  t.deepEqual(await geniGetFacts(nodePaths(tempDir()), { timeoutMs: 5000 }), {});
});

test('precedence: config > geni-get > Emulab boot files > host name', async (t) => {
  const root = tempDir();
  const paths = nodePaths(root);
  writeFile(paths.hostnameFile, 'hnode.hexp.hproj.host.example\n');
  writeFile(path.join(paths.bootDir, 'nickname'), 'bnode.bexp.bproj\n');
  writeFile(path.join(paths.bootDir, 'nodeid'), 'pc1\n');
  writeFile(path.join(paths.bootDir, 'mydomain'), 'boot.example\n');
  writeFile(paths.geniGet[0]!, '#!/bin/sh\ncase "$1" in slice_urn) echo urn:publicid:IDN+gg.example:gproj+slice+gexp ;; client_id) echo gnode ;; *) exit 1 ;; esac\n', 0o755);
  const config: Config = { ...defaultConfig(), facts: { nodeid: 'cfgnode', domain: 'cfg.example' }, origin: { file: '/cfg.toml', factLines: { nodeid: 2 } } };
  const facts = await gatherFacts(paths, config, { geniGet: true });
  t.deepEqual(facts.nodeid, { value: 'cfgnode', where: { source: '/cfg.toml', line: 2 } });
  t.deepEqual(facts.domain, { value: 'cfg.example', where: { source: '/cfg.toml' } });
  t.is(facts.sliceUrn?.value, 'urn:publicid:IDN+gg.example:gproj+slice+gexp');
  t.is(facts.clientId?.value, 'gnode');
  t.is(facts.nickname?.value, 'bnode.bexp.bproj');
  t.is(facts.hostname?.value, 'hnode.hexp.hproj.host.example');
  // geni-get not asked: on a refresh that is not explicit, or when the config disables it
  t.is((await gatherFacts(paths, config, { geniGet: false })).sliceUrn, undefined);
  t.is((await gatherFacts(paths, { ...config, geniGet: { enabled: false, timeoutMs: 3000 } }, { geniGet: true })).sliceUrn, undefined);
});

test('CRLF line endings in every testbed file (boot files, host name, geni-get output) give the same facts as LF', async (t) => {
  for (const name of ['emulab-pnode', 'pg-vnode']) {
    const lf = copyTree(tree(name).source);
    const crlf = copyTree(tree(name).source);
    for (const dir of ['etc', 'var/emulab/boot', 'usr/bin']) {
      const base = path.join(crlf, dir);
      if (!fs.existsSync(base)) continue;
      for (const f of fs.readdirSync(base, { recursive: true }) as string[]) {
        const file = path.join(base, f);
        if (!fs.statSync(file).isFile()) continue;
        const text = fs.readFileSync(file, 'utf8');
        // geni-get stays a shell script; its answers get CRLF endings.
        const out = f === 'geni-get' ? text.replace(/^(urn:|node|\[)(.*)$/gm, (_m, a: string, b: string) => `${a}${b}\r`) : text.replace(/\n/g, '\r\n');
        fs.writeFileSync(file, out);
      }
    }
    const config = defaultConfig();
    const a = await gatherFacts(nodePaths(lf), config, { geniGet: true });
    const b = await gatherFacts(nodePaths(crlf), config, { geniGet: true });
    const values = (f: typeof a) => Object.fromEntries(Object.entries(f).map(([k, v]) => [k, v?.value]));
    t.deepEqual(values(b), values(a), name);
    t.false(Object.values(b).some((v) => v?.value.includes('\r')), name);
  }
});
