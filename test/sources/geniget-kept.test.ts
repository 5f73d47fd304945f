// The testbed's last good geni-get answers, kept in the state directory (issue 25, point 1).
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { defaultConfig } from '../../src/config.js';
import { nodePaths } from '../../src/paths.js';
import { gatherNodeFacts } from '../../src/sources/gather.js';
import { afterCalls, keptFile, readKept, writeKept, EMPTY_KEPT } from '../../src/sources/geniget-kept.js';
import { refreshIdentity } from '../../src/identity/index.js';
import { copyTree, ownFixtures } from '../helpers/fixtures.js';

const URN = 'urn:publicid:IDN+utah.cloudlab.us:lab+slice+Sl-1';
const failing = '#!/bin/sh\necho "geni-get: $1: no route to boss" >&2\nexit 1\n';

test('a success is kept; a failure keeps it and says why; the next success replaces it', (t) => {
  const now = new Date('2026-12-04T10:00:00Z');
  let s = afterCalls(EMPTY_KEPT, { slice_urn: { ok: true, output: URN, where: { source: 'geni-get slice_urn' } }, client_id: undefined }, now);
  t.deepEqual(s.answers.slice_urn, { value: URN, at: '2026-12-04T10:00:00.000Z' });
  t.is(s.answers.client_id, undefined);
  t.deepEqual(s.failed, {}, 'no failure recorded for what was never answered');
  s = afterCalls(s, { slice_urn: { ok: false, reason: 'geni-get slice_urn gave no answer within 3000 ms and was killed' }, client_id: undefined }, new Date('2026-12-04T11:00:00Z'));
  t.is(s.answers.slice_urn?.value, URN);
  t.regex(s.failed.slice_urn?.reason ?? '', /no answer within 3000 ms/);
  s = afterCalls(s, { slice_urn: { ok: true, output: 'urn:publicid:IDN+utah.cloudlab.us:lab+slice+b', where: { source: 'x' } }, client_id: undefined }, now);
  t.is(s.answers.slice_urn?.value, 'urn:publicid:IDN+utah.cloudlab.us:lab+slice+b');
  t.is(s.failed.slice_urn, undefined);
});

test('kept answers: 0600 in the state directory; a garbled file counts as none', (t) => {
  const paths = nodePaths(copyTree(path.join(ownFixtures, 'emulab-pnode')));
  writeKept(paths, { answers: { slice_urn: { value: URN, at: 'x' } }, failed: {} });
  t.is(fs.statSync(keptFile(paths)).mode & 0o777, 0o600);
  t.is(fs.statSync(paths.stateDir).mode & 0o777, 0o700);
  t.is(readKept(paths).answers.slice_urn?.value, URN);
  fs.writeFileSync(keptFile(paths), '{"answers": {"slice_urn": {"value": 7');
  t.deepEqual(readKept(paths), EMPTY_KEPT);
});

test('gatherNodeFacts: a refresh that does not ask, or whose call fails, uses the kept answer', async (t) => {
  const paths = nodePaths(copyTree(path.join(ownFixtures, 'pg-vnode')));
  const config = defaultConfig();
  const asked = await gatherNodeFacts(paths, config, { geniGet: true });
  t.is(asked.facts.sliceUrn?.value, URN);
  t.false(asked.usedKept);
  writeKept(paths, asked.kept!);
  const notAsked = await gatherNodeFacts(paths, config, { geniGet: false });
  t.is(notAsked.facts.sliceUrn?.value, URN);
  t.regex(notAsked.facts.sliceUrn!.where.source, /kept in .*geniget\.json/);
  t.deepEqual(notAsked.notes, []);
  fs.writeFileSync(paths.geniGet[0]!, failing, { mode: 0o755 });
  const failed = await gatherNodeFacts(paths, config, { geniGet: true });
  t.is(failed.facts.sliceUrn?.value, URN);
  t.true(failed.usedKept);
  t.regex(failed.notes.join('\n'), /geni-get slice_urn failed at .*no route to boss.*keeping its last good answer/);
  // geni-get disabled by the operator: neither calls nor kept answers.
  const off = await gatherNodeFacts(paths, { ...config, geniGet: { enabled: false, timeoutMs: 3000 } }, { geniGet: true });
  t.is(off.facts.sliceUrn, undefined);
});

test('refreshIdentity: kept answers go aside with another node\'s state, and are not used', async (t) => {
  const paths = nodePaths(copyTree(path.join(ownFixtures, 'pg-vnode')));
  const config = defaultConfig();
  t.is((await refreshIdentity(paths, config, { geniGet: true, start: true })).identity.slicename, 'lab_Sl1');
  t.is((await refreshIdentity(paths, config, { geniGet: false })).identity.slicename, 'lab_Sl1', 'kept across a refresh that does not ask');
  // The image is cloned onto another node whose geni-get does not answer.
  fs.writeFileSync(path.join(paths.bootDir, 'nodeid'), 'pcvm9-1\n');
  fs.writeFileSync(paths.geniGet[0]!, failing, { mode: 0o755 });
  const r = await refreshIdentity(paths, config, { geniGet: true, start: true });
  t.truthy(r.setAside);
  t.is(r.identity.slicename, 'labpg3_sl1', 'derived on this node, not the other node\'s kept slice');
  t.false(fs.existsSync(keptFile(paths)));
});
