import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { defaultConfig, loadConfig } from '../../src/config.js';
import { InputError } from '../../src/errors.js';
import { nodePaths } from '../../src/paths.js';
import { configFacts } from '../../src/sources/config-facts.js';
import { tempDir } from '../helpers/fixtures.js';

function root(files: Record<string, string> = {}) {
  const r = tempDir();
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(r, rel)), { recursive: true });
    fs.writeFileSync(path.join(r, rel), text);
  }
  return nodePaths(r);
}

test('no config file: every default', (t) => {
  const paths = root();
  const { config, file } = loadConfig(paths);
  t.is(file, undefined);
  t.deepEqual(config, defaultConfig());
  t.deepEqual(config, {
    facts: {},
    gid: { validityDays: 1826, renewBeforeDays: 30 },
    geniGet: { enabled: true, timeoutMs: 3000 },
    api: { port: 812, listen: ['127.0.0.1', '::1'], socket: null, allowNonLoopback: false, getsshkeysKeyTypes: 'planetlab' },
    log: { level: 'info', format: 'auto' },
    hooks: { dir: null, timeout: 600, runner: 'auto' },
  });
});

test('TOML with snake_case keys maps to the camelCase shape; node paths are rebased under the root', (t) => {
  const paths = root({
    'etc/sliceid/sliceid.toml': [
      '[facts]',
      'slice_urn = "urn:publicid:IDN+emulab.net:p+slice+s"',
      'nodeid = "pc9"',
      '',
      '[authority]',
      'cert = "/etc/sliceid/ca.pem"',
      'key = "ca.key"',
      '',
      '[gid]',
      'validity_days = 400',
      'renew_before_days = 10',
      '',
      '[geni_get]',
      'enabled = false',
      'timeout_ms = 500',
      '',
      '[api]',
      'port = 8812',
      'listen = ["127.0.0.1", "0.0.0.0"]',
      'allow_non_loopback = true',
      'socket = "/run/nm.api"',
      '',
      '[log]',
      'level = "debug"',
    ].join('\n'),
  });
  const { config, file } = loadConfig(paths);
  t.is(file, paths.configCandidates[0]);
  t.deepEqual(config.facts, { sliceUrn: 'urn:publicid:IDN+emulab.net:p+slice+s', nodeid: 'pc9' });
  t.deepEqual(config.authority, { cert: path.join(paths.root, 'etc/sliceid/ca.pem'), key: path.join(paths.root, 'etc/sliceid/ca.key') });
  t.deepEqual(config.gid, { validityDays: 400, renewBeforeDays: 10 });
  t.deepEqual(config.geniGet, { enabled: false, timeoutMs: 500 });
  t.deepEqual(config.api, { port: 8812, listen: ['127.0.0.1', '0.0.0.0'], socket: path.join(paths.root, 'run/nm.api'), allowNonLoopback: true, getsshkeysKeyTypes: 'planetlab' });
  t.is(config.log.level, 'debug');
  // facts remember their file and line
  const facts = configFacts(config);
  t.deepEqual(facts.sliceUrn?.where, { source: file, line: 2 });
  t.deepEqual(facts.nodeid?.where, { source: file, line: 3 });
});

test('JSON by extension (camelCase accepted, null socket), explicit --config file', (t) => {
  const paths = root({ 'cfg/my.json': '{\n  "api": {"socket": null, "port": 0},\n  "facts": {"domain": "emulab.net"}\n}\n' });
  const { config, file } = loadConfig(paths, path.join(paths.root, 'cfg/my.json'));
  t.is(file, path.join(paths.root, 'cfg/my.json'));
  t.is(config.api.socket, null);
  t.is(config.api.port, 0);
  t.deepEqual(configFacts(config).domain, { value: 'emulab.net', where: { source: file!, line: 3 } });
});

function refusal(t: import('ava').ExecutionContext, name: string, text: string, pattern: RegExp, line?: number): void {
  const paths = root({ [`etc/sliceid/${name}`]: text });
  const err = t.throws(() => loadConfig(paths), { instanceOf: InputError }) as InputError;
  t.regex(err.message, pattern);
  t.is(err.where.source, path.join(paths.root, 'etc/sliceid', name));
  if (line !== undefined) t.is(err.where.line, line, err.message);
}

test('unknown keys are refused naming the file, the line, the key and the known ones', (t) => {
  refusal(t, 'sliceid.toml', '[api]\nport = 812\nallow_non_loopbak = true\n', /"api\.allow_non_loopbak" is not a known setting in \[api\] \(known: port, listen, socket, allow_non_loopback, getsshkeys_key_types\)/, 3);
  refusal(t, 'sliceid.toml', 'color = "blue"\n', /"color" is not a known setting in the top level \(known: facts, authority, gid, geni_get, api, log, hooks\)/, 1);
  refusal(t, 'sliceid.toml', '[facts]\nslice = "x"\n', /"facts\.slice" is not a known setting in \[facts\] \(known: hostname, nickname, .*slice_urn/, 2);
  refusal(t, 'sliceid.json', '{\n "facts": {\n  "bogus": 1\n }\n}', /"facts\.bogus" is not a known setting/, 3);
});

test('bad values are refused with the rule', (t) => {
  refusal(t, 'sliceid.toml', '[api]\nport = 70000\n', /sliceid\.toml:2: "70000" is not valid for api\.port: Too big/, 2);
  refusal(t, 'sliceid.toml', '[api]\nport = "812"\n', /is not valid for api\.port: .*expected number/);
  refusal(t, 'sliceid.toml', '[api]\nlisten = ["0.0.0.0"]\n', /"0\.0\.0\.0" is not valid for api\.listen\[0\]: is not a loopback address; set allow_non_loopback = true/, 2);
  refusal(t, 'sliceid.toml', '[api]\nlisten = ["localhost"]\n', /must be an IP address literal/);
  refusal(t, 'sliceid.toml', '[gid]\nvalidity_days = 10\nrenew_before_days = 30\n', /renew_before_days must be smaller than validity_days/);
  refusal(t, 'sliceid.toml', '[log]\nlevel = "loud"\n', /is not valid for log\.level/);
  refusal(t, 'sliceid.toml', '[facts]\nnodeid = "  "\n', /must not be empty/);
  refusal(t, 'sliceid.toml', '[authority]\ncert = "/a.pem"\n', /authority\.key/);
  refusal(t, 'sliceid.toml', '[facts]\nslice_urn = "a"\nsliceUrn = "b"\n', /sets facts\.slice_urn a second time/);
});

test('[api] getsshkeys_key_types: "planetlab" (default), "all" or a list of known key types; anything else refused with the rule', (t) => {
  const load = (text: string) => loadConfig(root({ 'etc/sliceid/sliceid.toml': text })).config.api.getsshkeysKeyTypes;
  t.is(load('[api]\n'), 'planetlab');
  t.is(load('[api]\ngetsshkeys_key_types = "planetlab"\n'), 'planetlab');
  t.is(load('[api]\ngetsshkeys_key_types = "all"\n'), 'all');
  t.deepEqual(load('[api]\ngetsshkeys_key_types = ["ssh-rsa", "ssh-ed25519", "ssh-rsa"]\n'), ['ssh-rsa', 'ssh-ed25519'], 'duplicates dropped');
  t.deepEqual(loadConfig(root({ 'etc/sliceid/sliceid.json': '{"api": {"getsshkeysKeyTypes": ["ssh-dss"]}}' })).config.api.getsshkeysKeyTypes, ['ssh-dss']);
  const rule = /must be "planetlab", "all" or a list of key types \(ssh-ed25519, ssh-rsa, .*ssh-dss\)/;
  refusal(t, 'sliceid.toml', '[api]\nport = 1\ngetsshkeys_key_types = "rsa"\n', rule, 3);
  refusal(t, 'sliceid.toml', '[api]\ngetsshkeys_key_types = "PlanetLab"\n', rule, 2);
  refusal(t, 'sliceid.toml', '[api]\ngetsshkeys_key_types = true\n', rule, 2);
  refusal(t, 'sliceid.toml', '[api]\ngetsshkeys_key_types = ["ssh-rsa", "ssh-ed448"]\n', /"ssh-ed448" is not valid for api\.getsshkeys_key_types\[1\]: is not a key type sliceid knows/, 2);
  refusal(t, 'sliceid.toml', '[api]\ngetsshkeys_key_types = []\n', /must list at least one key type/, 2);
});

test('syntax errors name the line', (t) => {
  refusal(t, 'sliceid.toml', '[api]\nport = = 3\n', /sliceid\.toml:2: "port = = 3" is not valid TOML/, 2);
  refusal(t, 'sliceid.json', '{\n "api": {,}\n}', /is not valid JSON/, 2);
  refusal(t, 'sliceid.json', '[1]', /is not a table of settings/);
});

test('an explicit config file that does not exist is refused', (t) => {
  const paths = root();
  t.throws(() => loadConfig(paths, path.join(paths.root, 'nope.toml')), { instanceOf: InputError, message: /nope\.toml: .* does not exist/ });
});

test('listen accepts every spelling of loopback the API server accepts', (t) => {
  const paths = root({ 'etc/sliceid/sliceid.toml': '[api]\nlisten = ["127.0.0.2", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"]\n' });
  t.deepEqual(loadConfig(paths).config.api.listen, ['127.0.0.2', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']);
});

test('[hooks]: the directory is a node path rebased under the root; the time limit is seconds, refused when not positive', (t) => {
  const paths = root({ 'etc/sliceid/sliceid.toml': '[hooks]\ndir = "/opt/hooks.d"\ntimeout = 2.5\n' });
  t.deepEqual(loadConfig(paths).config.hooks, { dir: path.join(paths.root, 'opt/hooks.d'), timeout: 2.5, runner: 'auto' });
  refusal(t, 'sliceid.toml', '[hooks]\ntimeout = 0\n', /"0" is not valid for hooks\.timeout: must be a positive number of seconds/, 2);
  refusal(t, 'sliceid.toml', '[hooks]\nuser = "nobody"\n', /"hooks\.user" is not a known setting in \[hooks\] \(known: dir, timeout, runner\)/, 2);
});
