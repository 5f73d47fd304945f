// Issue 25, point 3: logins are the node's accounts. Key files (and GetSSHKeys entries) only for
// logins the accounts data creates (ADDUSER) or geni_user entries of the slice's or the node's
// testbed; never root or a system account; every refusal is a status line naming the login or URN.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, ownFixtures } from '../helpers/fixtures.js';
import { startDaemon, getSshKeys, runCli } from '../helpers/daemon.js';
import { rsaKey } from '../keys/keygen.js';
import { nodePaths } from '../../src/paths.js';
import { openKeyCache } from '../../src/store/cache.js';
import { tryParseKeyText } from '../../src/keys/sshkey.js';
import { readAccounts } from '../../src/keys/accounts.js';

test.serial('foreign authorities, root, system accounts and logins no ADDUSER creates get no key file', async (t) => {
  const root = copyTree(path.join(ownFixtures, 'pg-vnode'));
  const key = (c: string): string => rsaKey(2048, c);
  const keys = {
    evilRoot: key('evil-root'), foreignGina: key('foreign-gina'), daemon: key('daemon'),
    ned: key('ned'), stray: key('stray'), sys: key('sys'), cy: key('cy-rsa'),
  };
  const geniUser = JSON.stringify([
    { urn: 'urn:publicid:IDN+utah.cloudlab.us+user+cy', keys: [keys.cy] }, // the slice's testbed
    { urn: 'urn:publicid:IDN+clemson.cloudlab.us+user+ned', keys: [keys.ned] }, // the node's testbed
    { urn: 'urn:publicid:IDN+evil.example.org+user+root', keys: [keys.evilRoot] },
    { urn: 'urn:publicid:IDN+other.example.org+user+gina', keys: [keys.foreignGina] },
    { urn: 'urn:publicid:IDN+utah.cloudlab.us+user+daemon', keys: [keys.daemon] }, // a system account of the node
  ]);
  const exe = path.join(root, 'usr/bin/geni-get');
  fs.renameSync(exe, `${exe}.real`);
  fs.writeFileSync(exe, `#!/bin/sh\nif [ "$1" = geni_user ]; then cat <<'END'\n${geniUser}\nEND\nexit 0; fi\nexec '${exe}.real' "$@"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n');
  fs.appendFileSync(
    path.join(root, 'var/emulab/boot/tmcc.pcvm7-2/accounts'),
    `PUBKEY LOGIN=stray KEY="${keys.stray}"\nADDUSER LOGIN=sys PSWD=* UID=5 GID=7100 ROOT=0 NAME="sys" HOMEDIR=/users/sys GLIST="" SERIAL=1 EMAIL="sys@x" SHELL=bash\nPUBKEY LOGIN=sys KEY="${keys.sys}"\n`,
  );
  const d = await startDaemon(root);
  try {
    const dir = path.join(root, 'etc/sliceid/authorized_keys');
    t.deepEqual(fs.readdirSync(dir).sort(), ['cy', 'dov', 'gina', 'ned']);
    t.true(fs.readFileSync(path.join(dir, 'cy'), 'utf8').includes(keys.cy));
    t.true(fs.readFileSync(path.join(dir, 'ned'), 'utf8').includes(keys.ned));
    t.false(fs.readFileSync(path.join(dir, 'gina'), 'utf8').includes(keys.foreignGina), "a foreign gina's key is not the local gina's");
    const served = Object.values(await getSshKeys(d.port)).join('\n');
    for (const refused of [keys.evilRoot, keys.foreignGina, keys.daemon, keys.stray, keys.sys]) t.false(served.includes(refused));
    t.true(served.includes(keys.cy));

    // Each refusal is a status line naming the URN or the login, and a problem (exit 1); file
    // events (which do not ask geni-get) keep them.
    const from = d.logs.length;
    fs.appendFileSync(path.join(root, 'var/emulab/boot/tmcc.pcvm7-2/accounts'), '\n');
    await d.waitForLog((l) => l.msg === 'refresh', 5000, from);
    const r = await runCli(['status', '--root', root]);
    t.is(r.code, 1);
    t.regex(r.stdout, /urn:publicid:IDN\+evil\.example\.org\+user\+root refused: its authority evil\.example\.org is neither the slice's utah\.cloudlab\.us nor the node's clemson\.cloudlab\.us/);
    t.regex(r.stdout, /urn:publicid:IDN\+other\.example\.org\+user\+gina refused/);
    t.regex(r.stdout, /login daemon is a system account of this node \(uid 1 in .*etc\/passwd\)/);
    t.regex(r.stdout, /login stray has PUBKEY lines but no ADDUSER line creates it/);
    t.regex(r.stdout, /login sys has UID 5, a system account's/);
  } finally {
    await d.stop();
  }
});

test.serial('root keys a cache made by an older version still holds get no key file', async (t) => {
  const root = copyTree(path.join(ownFixtures, 'emulab-pnode'));
  const paths = nodePaths(root);
  fs.mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const cache = openKeyCache(paths.database);
  const key = tryParseKeyText(rsaKey(2048, 'old-root'), { source: 'test' });
  if (key instanceof Error) throw key;
  // What an older version cached: the accounts file's users, and root and toor as well.
  const accounts = readAccounts(path.join(paths.bootDir, 'tmcc/accounts'));
  cache.applySource({ ...accounts, users: [...accounts.users, { login: 'root', keys: [key] }, { login: 'toor', uid: 0, keys: [key] }] });
  cache.close();
  const d = await startDaemon(root);
  try {
    // The accounts file no longer lists them: the shrink guard holds the old data for 2 s, but
    // no key file is ever written for root or a uid-0 account.
    const dir = path.join(root, 'etc/sliceid/authorized_keys');
    t.false(fs.existsSync(path.join(dir, 'root')));
    t.false(fs.existsSync(path.join(dir, 'toor')));
    t.true(fs.readdirSync(dir).length > 0);
  } finally {
    await d.stop();
  }
});
