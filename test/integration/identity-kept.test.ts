// Issue 25, point 1: one identity until the testbed says otherwise. On a node where geni-get names
// the slice (pg-vnode: the nickname would give another name), file-triggered refreshes, failed and
// timed-out calls keep the testbed's last good answer; only a successful answer that differs
// changes the slice.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, ownFixtures } from '../helpers/fixtures.js';
import { startDaemon, runCli } from '../helpers/daemon.js';

const RSA =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDMFlGuTqDaWsx+yr3UMY1ICvojmSOYluhkoZIZdrrI6PQdmAGgY8Y+efFoYJxGwuinKc8gCoHacuhKTUWGnOrlos91uW8b1xn1/iWxHz1pduzwPRZ9lSxXT0NCko7QHg2/XG2AfSdpZ+obV7226FBSfjy7xJ1QXLDY4d6LLXPedJwg6XrIv5p4lzLucLXjlQmrFY+S6Qwy27MULhRPePnHl++eudYCzbR1H2z40IVWtZsGDGz6beZg6P60QnGugnRm1uDoyCkXrqVYpaNu4SaYR9O6xUTeemdrbLASIEYSxoJj4pUnFNMME/cKgRUsBMqyvKR8FOwKFdrj3knm7ydx ben@new';

/** Put a geni-get in place that runs `body` for slice_urn/client_id and the fixture's own for the rest. */
function geniGet(root: string, body: string): void {
  const exe = path.join(root, 'usr/bin/geni-get');
  const real = path.join(root, 'usr/bin/geni-get.real');
  if (!fs.existsSync(real)) fs.renameSync(exe, real);
  fs.writeFileSync(exe, `#!/bin/sh\ncase "$1" in slice_urn|client_id) ${body} ;; esac\nexec '${real}' "$@"\n`, { mode: 0o755 });
}

test.serial('file events, failed and timed-out geni-get calls keep the slice; a new answer changes it', async (t) => {
  const root = copyTree(path.join(ownFixtures, 'pg-vnode'));
  const slicename = (): string => fs.readFileSync(path.join(root, 'etc/slicename'), 'utf8');
  const sliceGid = (): string => fs.readFileSync(path.join(root, 'etc/slice.gid'), 'utf8');
  const accounts = path.join(root, 'var/emulab/boot/tmcc.pcvm7-2/accounts');
  let d = await startDaemon(root);
  try {
    t.is(slicename(), 'lab_Sl1');
    const gid = sliceGid();

    // A file event: the nickname would say labpg3_sl1; the kept answer stands.
    let from = d.logs.length;
    fs.appendFileSync(accounts, `PUBKEY LOGIN=gina KEY="${RSA}"\n`);
    const fileRefresh = await d.waitForLog((l) => l.msg === 'refresh', 5000, from);
    t.regex(String(fileRefresh['trigger']), /^files:/);
    t.is(slicename(), 'lab_Sl1');
    t.is(sliceGid(), gid, 'slice GID not re-issued');
    t.deepEqual(fileRefresh['issued'], []);
    t.is(fs.statSync(path.join(root, 'var/lib/sliceid/geniget.json')).mode & 0o777, 0o600, 'kept with the state');

    // geni-get fails: SIGHUP keeps the kept answer, and status says so (exit 1).
    geniGet(root, `echo "geni-get: $1: cannot reach the testbed" >&2; exit 1`);
    from = d.logs.length;
    d.proc.kill('SIGHUP');
    await d.waitForLog((l) => l.msg === 'refresh' && l['trigger'] === 'SIGHUP', 10000, from);
    t.is(slicename(), 'lab_Sl1');
    t.is(sliceGid(), gid);
    let status = await runCli(['status', '--root', root]);
    t.is(status.code, 1, status.stdout);
    t.regex(status.stdout, /geni-get slice_urn failed at .*cannot reach the testbed.*keeping its last good answer "urn:publicid:IDN\+utah\.cloudlab\.us:lab\+slice\+Sl-1"/);
    // ... and keeps saying so after a file-triggered refresh that does not ask.
    from = d.logs.length;
    fs.appendFileSync(accounts, `PUBKEY LOGIN=gina KEY="${RSA} again"\n`);
    await d.waitForLog((l) => l.msg === 'refresh' && String(l['trigger']).startsWith('files:'), 5000, from);
    status = await runCli(['status', '--root', root]);
    t.regex(status.stdout, /geni-get slice_urn failed/);
    t.is(slicename(), 'lab_Sl1');
    await d.stop();

    // A restart whose calls time out keeps it too.
    fs.mkdirSync(path.join(root, 'etc/sliceid'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/sliceid/sliceid.toml'), '[geni_get]\ntimeout_ms = 300\n');
    geniGet(root, 'exec sleep 30');
    d = await startDaemon(root);
    t.is(slicename(), 'lab_Sl1');
    t.is(sliceGid(), gid);
    t.truthy(d.logs.find((l) => l.msg === 'refresh' && (l['faults'] as string[] | undefined)?.some((f) => /geni-get slice_urn failed .*gave no answer within 300 ms/.test(f))));

    // The testbed answers another slice: that changes it, and the failure is no longer reported.
    geniGet(root, `[ "$1" = slice_urn ] && { echo 'urn:publicid:IDN+utah.cloudlab.us:lab+slice+other'; exit 0; }`);
    from = d.logs.length;
    d.proc.kill('SIGHUP');
    await d.waitForLog((l) => l.msg === 'refresh' && l['trigger'] === 'SIGHUP', 10000, from);
    t.is(slicename(), 'lab_other');
    t.not(sliceGid(), gid);
    status = await runCli(['status', '--root', root]);
    t.notRegex(status.stdout, /geni-get slice_urn failed/);
  } finally {
    await d.stop();
  }
});
