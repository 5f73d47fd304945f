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

test('host config errors name the file and the line, as the node config errors do', (t) => {
  const file = (w: ReturnType<typeof withConfig>): string => path.join(w.root, 'etc/sliceid/sliceid.toml');
  const line = (text: string): string => {
    const w = withConfig(text);
    const err = t.throws(() => w.load())!;
    t.true(err.message.startsWith(`${file(w)}:`), err.message);
    return err.message.slice(file(w).length);
  };
  // A bad key of the second [[guest]] table: its own line.
  t.regex(line('[api]\nport = 812\n\n[[guest]]\nname = "a"\npid = 1\n\n[[guest]]\nname = "b"\npid = -3\n'), /^:10: "-3" is not valid for \[\[guest\]\] #2 \(b\) pid/);
  t.regex(line('[[guest]]\nname = "a"\npid = 1\n[[guest]]\nname = "a"\nnetns = "/x"\n'), /^:5: "a" \[\[guest\]\] #2: guest a listed twice/);
  t.regex(line('[[guest]]\nname = "a"\n'), /^:1: "a" \[\[guest\]\] #1 \(a\): exactly one of pid and netns/);
  t.regex(line('[[guest]]\nname = "a"\npid = 1\nexec = "/bin/sh"\n'), /^:4: "exec" is not a known setting/);
  t.regex(line('# comment\n[host]\nnetns_dir = "/x"\nall_slices = "yes"\n'), /^:4: "yes" is not valid for \[host\] all_slices/);
  // A node section after the host's: its line in the file (not in a rewritten text).
  t.regex(line('[host]\nall_slices = true\n\n[[guest]]\nname = "a"\npid = 1\n\n[api]\nport = "x"\n'), /^:9: .*api\.port/);
  // Not TOML at all.
  t.regex(line('[[guest]]\nname = "a\n'), /^:2: .*not valid TOML/);
  // The node sections are still read with the host's tables blanked.
  t.is(withConfig('[host]\nall_slices = true\n[api]\nport = 8812\n[[guest]]\nname = "a"\npid = 1\n').load().node.api.port, 8812);
});

test.serial('status --host names the config file and the line of a config that could not be reloaded', async (t) => {
  const { startHostDaemon } = await import('../../src/host/daemon.js');
  const { hostStatus } = await import('../../src/host/status.js');
  const { silentLogger } = await import('../../src/log.js');
  const w = withConfig('[host]\nnetns_dir = "/nonexistent-netns"\n');
  const paths = nodePaths(w.root);
  const daemon = await startHostDaemon({ paths, configFile: undefined, logger: silentLogger });
  t.teardown(() => daemon.stop('test'));
  const file = path.join(w.root, 'etc/sliceid/sliceid.toml');
  fs.writeFileSync(file, '[host]\nnetns_dir = "/nonexistent-netns"\n\n[[guest]]\nname = "a"\npid = 0\n');
  await daemon.reload();
  const st = await hostStatus(paths, { json: false });
  t.true(st.text.includes(`config ${file}`), st.text);
  t.true(st.text.includes(`config problem: config not reloaded, the previous one stays: ${file}:6: "0" is not valid for [[guest]] #1 (a) pid`), st.text);
});
