import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nodePaths } from '../../src/paths.js';
import { loadHostConfig } from '../../src/host/config.js';

function withConfig(text: string): { root: string; load: () => ReturnType<typeof loadHostConfig> } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hostcfg-'));
  fs.mkdirSync(path.join(root, 'etc/sliceid'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/sliceid/sliceid.toml'), text);
  return { root, load: () => loadHostConfig(nodePaths(root)) };
}

test('[[guest]] entries, [host] settings and the node sections are read; config paths are taken as written', (t) => {
  const { root, load } = withConfig(
    '[api]\nport = 8812\n[host]\nnetns_dir = "/run/netns"\nall_slices = true\n[[guest]]\nname = "pcvm7-2"\npid = 42\nroot = "/vz/root/101"\nhostname = "n.e.p.emulab.net"\n[[guest]]\nname = "pcvm7-3"\nnetns = "/var/run/netns/pcvm7-3"\n',
  );
  const c = load();
  t.is(c.node.api.port, 8812);
  t.is(c.netnsDir, '/run/netns');
  t.true(c.allSlices);
  t.deepEqual(c.guests, [
    { name: 'pcvm7-2', from: 'config', pid: 42, root: '/vz/root/101', hostname: 'n.e.p.emulab.net' },
    { name: 'pcvm7-3', from: 'config', netns: '/var/run/netns/pcvm7-3' },
  ]);
  const empty = withConfig('[api]\nport = 812\n');
  t.is(empty.load().netnsDir, path.join(empty.root, 'var/run/netns'));
});

test('bad guest entries are refused with a sentence naming them', (t) => {
  t.throws(() => withConfig('[[guest]]\nname = "../x"\npid = 1\n').load(), { message: /name must match/ });
  t.throws(() => withConfig('[[guest]]\nname = "a"\npid = 1\nnetns = "/x"\n').load(), { message: /exactly one of pid and netns/ });
  t.throws(() => withConfig('[[guest]]\nname = "a"\n').load(), { message: /exactly one of pid and netns/ });
  t.throws(() => withConfig('[[guest]]\nname = "a"\nnetns = "relative"\n').load(), { message: /absolute path/ });
  t.throws(() => withConfig('[[guest]]\nname = "a"\npid = 1\n[[guest]]\nname = "a"\npid = 2\n').load(), { message: /listed twice/ });
  t.throws(() => withConfig('[[guest]]\nname = "a"\npid = 1\nexec = "/bin/sh"\n').load(), { message: /unknown key exec/ });
  t.throws(() => withConfig('[host]\nall_slices = "yes"\n').load(), { message: /all_slices must be true or false/ });
});
