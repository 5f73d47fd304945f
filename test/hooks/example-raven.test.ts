// examples/slice.d/50-raven with a fake curl and rpm first on its PATH.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { projectDir, tempDir } from '../helpers/fixtures.js';

const EXAMPLE = path.join(projectDir, 'examples', 'slice.d', '50-raven');
const URL = 'https://repo.example.org/raven/raven-1.0-1.noarch.rpm';

/** A node with fake curl (fails with exit 22 when $dir/curl-fails exists) and fake rpm (state in $dir/installed). */
function fakeNode(source: string) {
  const dir = tempDir();
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const tool = (name: string, body: string): void => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  tool('curl', [
    `echo "curl $*" >> ${dir}/calls`,
    `if [ -e ${dir}/curl-fails ]; then echo "curl: (22) The requested URL returned error: 404" >&2; exit 22; fi`,
    'out=""; while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift ;; esac; shift; done',
    'printf "fake rpm payload" > "$out"',
  ].join('\n'));
  tool('rpm', [
    `echo "rpm $*" >> ${dir}/calls`,
    'case "$1" in',
    `  -q) [ -e ${dir}/installed ] && echo raven-1.0-1.noarch && exit 0; exit 1 ;;`,
    `  -U) [ "$(cat "$3")" = "fake rpm payload" ] || exit 2; touch ${dir}/installed ;;`,
    'esac',
  ].join('\n'));
  const hook = path.join(dir, '50-raven');
  const text = fs.readFileSync(EXAMPLE, 'utf8');
  assertOneSetting(text);
  fs.writeFileSync(hook, text.replace(/^RAVEN_SOURCE=""$/m, `RAVEN_SOURCE="${source}"`), { mode: 0o755 });
  const run = () => {
    const res = spawnSync('sh', [hook], {
      encoding: 'utf8',
      env: { PATH: `${bin}:/usr/bin:/bin`, TMPDIR: dir, SLICEID_SLICENAME: 'p_s' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { code: res.status, stdout: res.stdout, stderr: res.stderr };
  };
  const calls = (): string[] => (fs.existsSync(path.join(dir, 'calls')) ? fs.readFileSync(path.join(dir, 'calls'), 'utf8').trim().split('\n') : []);
  const leftovers = (): string[] => fs.readdirSync(dir).filter((n) => n.startsWith('50-raven.'));
  return { dir, run, calls, leftovers };
}

function assertOneSetting(text: string): void {
  if ((text.match(/^RAVEN_SOURCE=""$/gm) ?? []).length !== 1) throw new Error('the example must set RAVEN_SOURCE="" once, at its top');
}

test('the example is POSIX sh and ships disabled (no source set)', (t) => {
  t.is(spawnSync('sh', ['-n', EXAMPLE]).status, 0);
  const res = spawnSync('sh', [EXAMPLE], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
  t.is(res.status, 1);
  t.regex(res.stderr, /RAVEN_SOURCE is not set/);
});

test('a failing download exits non-zero with a clear message and installs nothing', (t) => {
  const node = fakeNode(URL);
  fs.writeFileSync(path.join(node.dir, 'curl-fails'), '');
  const res = node.run();
  t.is(res.code, 1);
  t.regex(res.stderr, new RegExp(`50-raven: could not download ${URL.replace(/[.]/g, '\\.')} \\(exit status 22\\): the Raven tools are NOT installed`));
  t.false(node.calls().some((c) => c.startsWith('rpm -U')));
  t.deepEqual(node.leftovers(), [], 'its temp dir is removed');
});

test('a good download installs the RPM; a second run (new slice) does nothing', (t) => {
  const node = fakeNode(URL);
  const first = node.run();
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /installed raven-1\.0-1\.noarch for slice p_s/);
  t.true(node.calls().some((c) => c.startsWith('curl ') && c.endsWith(URL)));
  t.true(node.calls().some((c) => /^rpm -U --replacepkgs .*\/raven\.rpm$/.test(c)));
  t.deepEqual(node.leftovers(), []);
  const before = node.calls().length;
  const second = node.run();
  t.is(second.code, 0);
  t.regex(second.stdout, /already installed/);
  t.deepEqual(node.calls().slice(before), ['rpm -q raven', 'rpm -q raven'], 'no download the second time');
});

test('a source that is neither an .rpm nor a .repo URL is refused', (t) => {
  const res = fakeNode('https://repo.example.org/raven/').run();
  t.is(res.code, 1);
  t.regex(res.stderr, /must be the URL of an \.rpm or a \.repo file/);
});
