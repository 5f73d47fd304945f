// Fair connection slots, without the network: fake sockets, fake owners.
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import test from 'ava';
import { fairSlots, procTcpOwners } from '../../src/api/fair.js';

let nextPort = 40000;
function fakeSocket(): net.Socket & { destroyedBy?: string } {
  const s = new EventEmitter() as unknown as net.Socket & { destroyed: boolean };
  Object.assign(s, { remotePort: nextPort++, localPort: 812, destroyed: false });
  (s as unknown as { destroy: () => void }).destroy = () => {
    if (s.destroyed) return;
    (s as { destroyed: boolean }).destroyed = true;
    s.emit('close');
  };
  return s;
}

test('TCP: the heaviest holder loses its oldest idle connection; a busy one is never evicted; others keep theirs', (t) => {
  const owner = new Map<string, number>();
  let clock = 0;
  const slots = fairSlots({ max: 10, perPeer: 100, tcp: true, owners: () => owner, now: () => (clock += 100) });
  const legit = fakeSocket();
  owner.set(`${legit.remotePort}>812`, 1001);
  slots.admit(legit);
  slots.busy(legit);
  const attacker: net.Socket[] = [];
  for (let i = 0; i < 200; i++) {
    const s = fakeSocket();
    owner.set(`${s.remotePort}>812`, 2000);
    t.true(slots.admit(s));
    attacker.push(s);
  }
  t.is(slots.size, 10);
  t.false(legit.destroyed, 'the busy legit connection stays');
  const second = fakeSocket();
  owner.set(`${second.remotePort}>812`, 1001);
  t.true(slots.admit(second), 'a newcomer is admitted into a full table');
  t.false(second.destroyed);
  t.is(slots.holders().get('uid 2000'), 8);
  t.deepEqual(attacker.slice(0, 191).filter((s) => !s.destroyed), [], 'the oldest went first');
  slots.idle(legit);
  for (let i = 0; i < 20; i++) {
    const s = fakeSocket();
    owner.set(`${s.remotePort}>812`, 2000);
    slots.admit(s);
  }
  t.false(legit.destroyed, 'idle but of a light holder: kept');
  t.false(second.destroyed);
});

test('TCP near full: a holder past perPeer gives up its oldest idle connection for each new one', (t) => {
  const owner = new Map<string, number>();
  const slots = fairSlots({ max: 100, perPeer: 10, tcp: true, owners: () => owner });
  for (let i = 0; i < 200; i++) {
    const s = fakeSocket();
    owner.set(`${s.remotePort}>812`, 2000);
    slots.admit(s);
  }
  // Below three quarters the cap is not applied; above, the holder is held near it.
  t.true((slots.holders().get('uid 2000') ?? 0) <= 75, `${slots.holders().get('uid 2000')}`);
});

test('Unix socket: one holder, oldest idle first; when every slot is busy the newcomer is refused', (t) => {
  const slots = fairSlots({ max: 3, perPeer: 1, tcp: false });
  const a = [fakeSocket(), fakeSocket(), fakeSocket()];
  for (const s of a) slots.admit(s);
  slots.busy(a[0]!);
  const n = fakeSocket();
  t.true(slots.admit(n));
  t.true(a[1]!.destroyed, 'the oldest idle went');
  t.false(a[0]!.destroyed, 'the busy one stays');
  for (const s of [a[2]!, n]) slots.busy(s);
  const late = fakeSocket();
  t.false(slots.admit(late));
  t.true(late.destroyed);
});

test('procTcpOwners reads "peerPort>ourPort" -> uid from the kernel tables', async (t) => {
  const { default: net } = await import('node:net');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect(port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  const map = procTcpOwners();
  t.is(map.get(`${client.localPort}>${port}`), process.getuid!());
  client.destroy();
  server.close();
});
