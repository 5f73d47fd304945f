import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { socketNotOurs } from '../../src/commands/status.js';
import { tempDir } from '../helpers/fixtures.js';

test("status asks the socket only when it is a socket of the pidfile's owner", async (t) => {
  const dir = tempDir();
  const pidFile = path.join(dir, 'sliceid.pid');
  const socket = path.join(dir, 'nodemanager.api');
  fs.writeFileSync(pidFile, '1\n');
  const server = net.createServer().listen(socket);
  await new Promise((r) => server.once('listening', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  t.is(socketNotOurs(socket, pidFile), undefined);
  // The pidfile's owner is the daemon's uid: a socket of any other uid is someone else's.
  fs.lchownSync(socket, 4242, 4242);
  t.regex(socketNotOurs(socket, pidFile)!, /owned by uid 4242, not by the daemon's uid/);
  fs.lchownSync(socket, 0, 0);
  fs.chownSync(pidFile, 0, 0);
  fs.rmSync(socket);
  fs.writeFileSync(socket, 'not a socket');
  t.regex(socketNotOurs(socket, pidFile)!, /is not a socket/);
  fs.rmSync(socket);
  t.regex(socketNotOurs(socket, pidFile)!, /ENOENT/);
});
