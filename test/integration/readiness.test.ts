// Boot ordering and readiness (issue 25, point 1): the unit waits for network-online.target (so
// geni-get can answer) and is Type=notify; the daemon says READY=1 to systemd, from its own pid,
// once the three files are written and the API answers. A Python datagram socket stands in for
// systemd's notify socket and reads the sender's credentials (SCM_CREDENTIALS).
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { copyTree, ownFixtures, projectDir, tempDir } from '../helpers/fixtures.js';
import { getSshKeys, startDaemon } from '../helpers/daemon.js';

const LISTENER = `
import json, os, socket, struct, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"listening": path}), flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, uid, gid = struct.unpack("iii", data[:12])
    print(json.dumps({"message": msg.decode(), "pid": pid}), flush=True)
`;

function unit(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of fs.readFileSync(path.join(projectDir, 'packaging', 'sliceid.service'), 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

test('the unit: after and wanting network-online.target, Type=notify with NotifyAccess for the helper', (t) => {
  const u = unit();
  t.true(u.get('Wants')?.some((v) => v.split(/\s+/).includes('network-online.target')), 'Wants=network-online.target');
  t.true(u.get('After')?.some((v) => v.split(/\s+/).includes('network-online.target')), 'After=network-online.target');
  t.deepEqual(u.get('Type'), ['notify']);
  t.deepEqual(u.get('NotifyAccess'), ['all']);
});

test.serial('under Type=notify the daemon sends READY=1 from its own pid, once the files are written and the API answers', async (t) => {
  if (!fs.existsSync('/usr/bin/systemd-notify') && !fs.existsSync('/bin/systemd-notify')) return t.fail('systemd-notify is not installed (apt-get install systemd)');
  const socketPath = path.join(tempDir(), 'notify');
  const listener = spawn('python3', ['-c', LISTENER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => listener.kill('SIGKILL'));
  const lines = readline.createInterface({ input: listener.stdout! });
  const messages: Array<{ message: string; pid: number | null }> = [];
  let onMessage: (() => void) | undefined;
  const listening = new Promise<void>((resolve) =>
    lines.on('line', (line) => {
      const parsed = JSON.parse(line) as { listening?: string; message?: string; pid?: number | null };
      if (parsed.listening) resolve();
      else {
        messages.push({ message: parsed.message!, pid: parsed.pid ?? null });
        onMessage?.();
      }
    }),
  );
  await listening;
  const root = copyTree(path.join(ownFixtures, 'emulab-pnode'));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no READY=1 within 30 s; got ${JSON.stringify(messages)}`)), 30_000);
    onMessage = () => {
      if (messages.some((m) => m.message.split('\n').includes('READY=1'))) {
        clearTimeout(timer);
        resolve();
      }
    };
  });
  const d = await startDaemon(root, [], 60_000, undefined, { ...process.env, NOTIFY_SOCKET: socketPath });
  try {
    await ready;
    for (const f of ['etc/slicename', 'etc/slice.gid', 'etc/node.gid']) t.true(fs.statSync(path.join(root, f)).size > 0, f);
    t.deepEqual(Object.keys(await getSshKeys(d.port)), ['wlab_radio']);
    const msg = messages.find((m) => m.message.split('\n').includes('READY=1'))!;
    t.is(msg.pid, d.proc.pid ?? -1, "sent with the daemon's credentials (systemd attributes it to the unit's main process)");
    t.regex(msg.message, /STATUS=serving wlab_radio/);
    t.is(messages.filter((m) => m.message.includes('READY=1')).length, 1, 'once');
  } finally {
    await d.stop();
  }
});
