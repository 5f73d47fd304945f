// Which cached keys GetSSHKeys lists ([api] getsshkeys_key_types) and in what form; NodeView
// over a real cache; the Raven/Stork reading of what is listed.
import test from 'ava';
import crypto from 'node:crypto';
import path from 'node:path';
import { MAX_LISTED_COMMENT, describeLeftOut, listKeys, listingReport, listingText, listedTypes, storkUnusable } from '../../src/api/key-listing.js';
import { createNodeManager } from '../../src/api/nodemanager.js';
import { NodeView } from '../../src/daemon/data.js';
import { KEY_TYPES, parseKeyText } from '../../src/keys/sshkey.js';
import type { SourceResult } from '../../src/keys/types.js';
import { openKeyCache } from '../../src/store/cache.js';
import { decodeMethodResponse } from '../../src/xmlrpc/decode.js';
import { tempDir } from '../helpers/fixtures.js';
import { blobText, ecdsaKey, ed25519Key, mpint, rsaKey, skEcdsaKey, skEd25519Key } from '../keys/keygen.js';

const RSA = rsaKey(1024, 'alice@desktop');
const RSA2 = rsaKey(1024, 'bob   "the  builder"  Jones');
const ED = ed25519Key('alice@laptop');
const EC = ecdsaKey('P-256', 'carol@uni');
const SK = skEd25519Key('dave@yubikey');
const SKEC = skEcdsaKey('erin@token');
const DSS = blobText('ssh-dss', [mpint(Buffer.alloc(128, 0xff)), mpint(Buffer.alloc(20, 0xff)), mpint(Buffer.from([2])), mpint(Buffer.from([3]))], 'old@dsa');
/** An ssh-rsa key of the right shape with a `bits`-bit modulus (no key generation needed). */
function rsaShaped(bits: number, comment: string): string {
  const n = crypto.randomBytes(Math.ceil(bits / 8));
  n[0] = (n[0]! | 0x80) >> (n.length * 8 - bits);
  n[n.length - 1]! |= 1;
  return blobText('ssh-rsa', [mpint(Buffer.from([1, 0, 1])), mpint(n)], comment);
}

test('by default only ssh-rsa and ssh-dss are listed; "all" lists every type; a list lists exactly those', (t) => {
  const texts = [ED, RSA, EC, SK, RSA2, SKEC];
  const def = listKeys(texts, 'planetlab');
  t.deepEqual(def.listed, [RSA, listingText(RSA2)]);
  t.deepEqual(def.leftOut, { 'ssh-ed25519': 1, 'ecdsa-sha2-nistp256': 1, 'sk-ssh-ed25519@openssh.com': 1, 'sk-ecdsa-sha2-nistp256@openssh.com': 1 });
  t.is(def.total, 6);
  t.deepEqual(listKeys(texts, 'all').listed, texts.map(listingText));
  t.deepEqual(listKeys(texts, 'all').leftOut, {});
  t.deepEqual(listKeys(texts, ['ssh-ed25519', 'ecdsa-sha2-nistp256']).listed, [ED, EC]);
  t.deepEqual([...listedTypes('planetlab')!].sort(), ['ssh-dss', 'ssh-rsa']);
  t.is(listedTypes('all'), undefined);
  for (const type of KEY_TYPES) t.true(listedTypes([type])!.has(type));
  t.is(describeLeftOut(def.leftOut), '1 ecdsa-sha2-nistp256, 1 sk-ecdsa-sha2-nistp256@openssh.com, 1 sk-ssh-ed25519@openssh.com, 1 ssh-ed25519');
});

test('listed as "type base64 comment": single spaces, no tabs, no \\r, printable ASCII only', (t) => {
  const blob = RSA.split(' ')[1]!;
  t.is(listingText(`ssh-rsa ${blob} bob   "the  builder"  Jones`), `ssh-rsa ${blob} bob "the builder" Jones`);
  t.is(listingText(`ssh-rsa\t${blob}\tcomment`), `ssh-rsa ${blob} comment`);
  t.is(listingText(`ssh-rsa ${blob}`), `ssh-rsa ${blob}`);
  t.is(listingText(`ssh-rsa ${blob} José Müller 😀@host`), `ssh-rsa ${blob} Jos? M?ller ?@host`, 'one ? per character, astral ones included');
  // What the cache holds (parsed strictly) always comes out in that shape.
  const parsed = parseKeyText(`ssh-rsa  ${blob}   Zoë  the   admin  `, { source: 'test' });
  const listed = listingText(parsed.text);
  t.is(listed, `ssh-rsa ${blob} Zo? the admin`);
  t.regex(listed, /^ssh-rsa [A-Za-z0-9+/=]+ [\x21-\x7e]+(?: [\x21-\x7e]+)*$/, 'PLC\'s rule, and no double space, tab, CR or non-ASCII');
});

test('status: a line with the counts, and a problem only when the entry is empty because of the types left out', (t) => {
  const onlyModern = listKeys([ED, EC], 'planetlab');
  const r = listingReport('p_e', onlyModern, 'planetlab');
  t.is(r.line, 'lists 0 of 2 keys (types: planetlab (ssh-rsa, ssh-dss)); leaves out 1 ecdsa-sha2-nistp256, 1 ssh-ed25519 (served to sshd and by "sliceid keys --all")');
  t.is(r.problems.length, 1);
  t.regex(r.problems[0]!, /^GetSSHKeys lists no key for slice p_e: all 2 of its keys are of types it leaves out \(1 ecdsa-sha2-nistp256, 1 ssh-ed25519\), so the Raven tools would report "no keys"/);
  t.deepEqual(listingReport('p_e', listKeys([ED, RSA], 'planetlab'), 'planetlab').problems, [], 'one listable key is enough');
  t.deepEqual(listingReport('p_e', listKeys([], 'planetlab'), 'planetlab').problems, [], 'no keys at all is another matter (not the key types)');
  t.deepEqual(listingReport(undefined, onlyModern, 'planetlab').problems, [], 'no slice');
  t.is(listingReport('p_e', listKeys([ED, EC], 'all'), 'all').line, 'lists 2 of 2 keys (types: all key types)');
});

test('status: listed keys the Stork client cannot convert (ssh-dss, RSA over 4096 bits) are a problem', (t) => {
  const big = rsaShaped(4097, 'huge@key');
  const at4096 = rsaShaped(4096, 'max@key');
  t.notThrows(() => parseKeyText(big, { source: 'x' }), 'a key the cache takes');
  t.deepEqual(storkUnusable([RSA, at4096, big, DSS]), { 'ssh-rsa over 4096 bits': 1, 'ssh-dss': 1 });
  t.deepEqual(storkUnusable([RSA, at4096, RSA2]), {});
  const r = listingReport('p_e', listKeys([RSA, big, DSS, ED], 'planetlab'), 'planetlab');
  t.deepEqual(r.problems, [
    'GetSSHKeys lists for slice p_e keys the Raven tools cannot convert (1 ssh-dss, 1 ssh-rsa over 4096 bits): they stop at the first one; remove them from the slice users, or set [api] getsshkeys_key_types = ["ssh-rsa"] for ssh-dss',
  ]);
  t.deepEqual(listingReport('p_e', listKeys([RSA, DSS], ['ssh-rsa']), ['ssh-rsa']).problems, [], 'ssh-dss left out by the setting');
});

function source(keys: string[]): SourceResult {
  return { id: 'tmcc:accounts', origin: '/var/emulab/boot/tmcc/accounts', status: 'ok', users: [{ login: 'alice', uid: 20001, keys: keys.map((k) => parseKeyText(k, { source: 'x' })) }], problems: [] };
}

test('NodeView over a real cache: GetSSHKeys and GetRecord list the configured types; sshd still gets every key; a keyless slice is ""', (t) => {
  const cache = openKeyCache(path.join(tempDir(), 'cache.db'));
  t.teardown(() => cache.close());
  cache.applySource(source([ED, RSA, EC]));
  const slice = { slicename: 'p_e', sliceUrn: 'urn:publicid:IDN+emulab.net:p+slice+e', sliceHrn: 'emulab\\.net.p.e', owners: ['alice'] };
  const views = { planetlab: new NodeView(cache), all: new NodeView(cache, 'all'), ed: new NodeView(cache, ['ssh-ed25519']) };
  for (const v of Object.values(views)) v.setSlice(slice);
  const get = (v: NodeView, m: string) => decodeMethodResponse(createNodeManager(v).respond({ methodName: m, params: [] }));
  t.deepEqual(get(views.planetlab, 'GetSSHKeys'), { params: [{ p_e: RSA }] });
  t.deepEqual(get(views.all, 'GetSSHKeys'), { params: [{ p_e: [ED, RSA, EC].join('\n') }] });
  t.deepEqual(get(views.ed, 'GetSSHKeys'), { params: [{ p_e: ED }] });
  t.is((get(views.planetlab, 'GetRecord') as { params: [{ keys: string }] }).params[0].keys, RSA, 'GetRecord lists what GetSSHKeys lists');
  t.deepEqual(cache.userKeys('alice'), [ED, RSA, EC], 'sshd (authorized-keys) gets every cached key');
  const first = views.planetlab.sliceKeys();
  t.is(views.planetlab.sliceKeys(), first, 'memoized while the cache holds');
  cache.applySource(source([ED, EC]));
  t.deepEqual(get(views.planetlab, 'GetSSHKeys'), { params: [{ p_e: '' }] }, 'every key left out: the slice is there with ""');
  t.deepEqual(get(views.all, 'GetSSHKeys'), { params: [{ p_e: [ED, EC].join('\n') }] });
});

test('a listed comment is cut at MAX_LISTED_COMMENT characters (a 16 KB comment of & would be 80 KB of XML)', (t) => {
  const long = `ssh-rsa AAAAB3Nza ${'&'.repeat(16 * 1024)}`;
  t.is(listingText(long), `ssh-rsa AAAAB3Nza ${'&'.repeat(MAX_LISTED_COMMENT)}`);
  const messy = `ssh-rsa\tAAAAB3Nza  ${'a  '.repeat(1000)}`;
  const cut = listingText(messy);
  t.is(cut.length - 'ssh-rsa AAAAB3Nza '.length, MAX_LISTED_COMMENT - 1, 'cut after normalising, trailing blank dropped');
  const short = `ssh-rsa AAAAB3Nza ${'c'.repeat(MAX_LISTED_COMMENT)}`;
  t.is(listingText(short), short, 'a comment at the bound is untouched');
  t.is(listingText('ssh-rsa AAAAB3Nza'), 'ssh-rsa AAAAB3Nza');
});
