import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { parseKeyText, tryParseKeyText, checkBlob, KEY_TYPES } from '../../src/keys/sshkey.js';
import { InputError } from '../../src/errors.js';
import { tempDir } from '../helpers/fixtures.js';
import {
  blobText,
  ecdsaKey,
  ecdsaPoint,
  ed25519Key,
  mpint,
  randomEd25519,
  rsaKey,
  skEcdsaKey,
  skEd25519Key,
  sshString,
} from './keygen.js';

const where = { source: 'test', line: 7 };
const ED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdRCiMKoSIq4rGUReEyM7QoTLetl9R+XCsm8taaoIul alice@laptop';

function rejects(t: import('ava').ExecutionContext, text: string, pattern: RegExp): void {
  const err = t.throws(() => parseKeyText(text, where), { instanceOf: InputError });
  t.regex(err!.message, pattern, text.slice(0, 60));
  t.true(err!.message.startsWith('test:7: '), 'message names file and line');
}

test('ssh-keygen keys of every type parse, with ssh-keygen\'s fingerprints', (t) => {
  const dir = tempDir();
  const specs: Array<[string, string[]]> = [
    ['ed25519', ['-t', 'ed25519']],
    ['ecdsa256', ['-t', 'ecdsa', '-b', '256']],
    ['ecdsa384', ['-t', 'ecdsa', '-b', '384']],
    ['ecdsa521', ['-t', 'ecdsa', '-b', '521']],
    ['rsa', ['-t', 'rsa', '-b', '1024']],
    ['dsa', ['-t', 'dsa']],
  ];
  for (const [name, args] of specs) {
    const file = path.join(dir, name);
    execFileSync('ssh-keygen', [...args, '-q', '-N', '', '-C', `${name} "quoted" comment`, '-f', file]);
    const text = fs.readFileSync(`${file}.pub`, 'utf8').trimEnd();
    const key = parseKeyText(text, where);
    t.is(key.text, text, name);
    t.is(key.comment, `${name} "quoted" comment`);
    const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
    t.is(key.fingerprint, fp, name);
  }
});

test('generated keys of every known type parse and round-trip', (t) => {
  const texts = [
    ed25519Key('a@b'),
    randomEd25519(),
    rsaKey(2048, 'r@s'),
    ecdsaKey('P-256', 'x'),
    ecdsaKey('P-384', 'y'),
    ecdsaKey('P-521', 'z'),
    skEd25519Key('sk@yubi'),
    skEcdsaKey('sk2'),
  ];
  const types = new Set<string>();
  for (const text of texts) {
    const key = parseKeyText(text, where);
    t.is(key.text, text);
    t.deepEqual(parseKeyText(key.text, where), key);
    types.add(key.type);
  }
  t.deepEqual([...types].sort(), KEY_TYPES.filter((k) => k !== 'ssh-dss').sort());
});

test('fields are normalised to single spaces; the comment is kept verbatim', (t) => {
  const [type, blob] = ED.split(' ');
  const key = parseKeyText(`  ${type} \t ${blob}   Bob  "the builder"  Jones \t `, where);
  t.is(key.comment, 'Bob  "the builder"  Jones');
  t.is(key.text, `${type} ${blob} Bob  "the builder"  Jones`);
  const bare = parseKeyText(`${type} ${blob}`, where);
  t.is(bare.comment, '');
  t.is(bare.text, `${type} ${blob}`);
  t.is(parseKeyText(`${type} ${blob}   `, where).text, `${type} ${blob}`);
  t.is(key.fingerprint, 'SHA256:bcMTyzYvRqGVeFTUvxkErZemHbSu4PN6yqDXwYawu7o');
});

test('a literal backslash-n in the comment stays one key; in the base64 it is an error', (t) => {
  const one = parseKeyText(`${ED}\\nssh-rsa AAAAB3NzaC1yc2E injected`, where);
  t.is(one.comment, 'alice@laptop\\nssh-rsa AAAAB3NzaC1yc2E injected');
  t.false(one.text.includes('\n'));
  rejects(t, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdRCiMKoSIq4rGUReEyM7Qo\\nssh-rsa injected', /not valid base64/);
});

test('control characters, line breaks and bad Unicode are refused', (t) => {
  for (const bad of ['\n', '\r', '\0', '\u0001', '\u007f', '\u0085', '\u2028', '\ud800']) {
    rejects(t, `${ED}${bad}x`, /control character|line break|Unicode/);
  }
  rejects(t, `${ED} with\ttab`, /tab/);
  rejects(t, `ssh-ed25519\nAAAAC3NzaC1lZDI1NTE5AAAAIOdRCiMKoSIq4rGUReEyM7QoTLetl9R+XCsm8taaoIul`, /control character/);
});

test('shape and type errors', (t) => {
  rejects(t, '', /empty/);
  rejects(t, '   ', /empty/);
  rejects(t, 'ssh-dss', /no key data/);
  rejects(t, 'AAAAC3NzaC1lZDI1NTE5AAAAIOdRCiMKoSIq4rGUReEyM7QoTLetl9R+XCsm8taaoIul', /not "type base64/);
  rejects(t, 'ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAIOdRCiMKoSIq4rGUReEyM7QoTLetl9R+XCsm8taaoIul x', /unknown key type/);
  rejects(t, 'SSH-ED25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdRCiMKoSIq4rGUReEyM7QoTLetl9R+XCsm8taaoIul x', /unknown key type/);
  rejects(t, 'ssh-ed25519-cert-v01@openssh.com AAAA x', /unknown key type/);
  rejects(t, '1024 35 12345678901234567890 old-ssh1-key', /unknown key type/);
  rejects(t, 'ssh-rsa ' + ED.split(' ')[1] + ' x', /blob says it is "ssh-ed25519"/);
  rejects(t, 'ssh-ed25519 ' + 'A'.repeat(5000), /longer than/);
  rejects(t, 'x'.repeat(20000), /longer than/);
});

test('base64 must be valid and canonical', (t) => {
  const blob = ED.split(' ')[1]!;
  rejects(t, `ssh-ed25519 ${blob.slice(0, -1)} x`, /not valid base64/);
  rejects(t, `ssh-ed25519 ${blob}= x`, /not valid base64/);
  rejects(t, `ssh-ed25519 ${blob}AA== x`, /trailing bytes/);
  rejects(t, 'ssh-ed25519 %%%not-base64%%% x', /not valid base64/);
  rejects(t, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdR-iMKoSIq4rGUReEyM7QoTLetl9R_XCsm8taaoIul x', /not valid base64/);
  // Same bytes, but with non-zero padding bits: not canonical.
  const ecdsa = ecdsaKey('P-256').split(' ')[1]!;
  t.true(ecdsa.endsWith('='));
  const last = ecdsa[ecdsa.length - 2]!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const bumped = alphabet[alphabet.indexOf(last) + 1]!;
  rejects(t, `ecdsa-sha2-nistp256 ${ecdsa.slice(0, -2)}${bumped}= x`, /canonical/);
});

test('blob structure is checked strictly', (t) => {
  const pub = Buffer.alloc(32, 7);
  t.truthy(parseKeyText(blobText('ssh-ed25519', [sshString(pub)]), where));
  rejects(t, blobText('ssh-ed25519', [sshString(pub), Buffer.from([0])]), /trailing bytes/);
  rejects(t, blobText('ssh-ed25519', [sshString(Buffer.alloc(31))]), /not 32 bytes/);
  rejects(t, blobText('ssh-ed25519', [sshString(Buffer.alloc(33))]), /too long/);
  rejects(t, blobText('ssh-ed25519', []), /cut short/);
  rejects(t, blobText('ssh-ed25519', [Buffer.from([0, 0, 0, 32, 1, 2])]), /cut short/);
  rejects(t, blobText('sk-ssh-ed25519@openssh.com', [sshString(pub)]), /cut short/);
  rejects(t, blobText('sk-ssh-ed25519@openssh.com', [sshString(pub), sshString('')]), /application/);

  const point = ecdsaPoint('P-256');
  t.truthy(parseKeyText(blobText('ecdsa-sha2-nistp256', [sshString('nistp256'), sshString(point)]), where));
  rejects(t, blobText('ecdsa-sha2-nistp256', [sshString('nistp384'), sshString(point)]), /curve/);
  const off = Buffer.from(point);
  off[64] = off[64]! ^ 1;
  rejects(t, blobText('ecdsa-sha2-nistp256', [sshString('nistp256'), sshString(off)]), /not on nistp256/);
  const compressed = Buffer.concat([Buffer.from([2 + (point[64]! & 1)]), point.subarray(1, 33)]);
  rejects(t, blobText('ecdsa-sha2-nistp256', [sshString('nistp256'), sshString(compressed)]), /uncompressed/);
  rejects(t, blobText('ecdsa-sha2-nistp384', [sshString('nistp384'), sshString(point)]), /uncompressed nistp384/);

  const rsa = parseKeyText(rsaKey(1024), where);
  const parts = Buffer.from(rsa.blob, 'base64');
  t.is(checkBlob('ssh-rsa', parts), undefined);
  const n = Buffer.alloc(128, 0xff);
  const e = Buffer.from([1, 0, 1]);
  t.is(checkBlob('ssh-rsa', Buffer.concat([sshString('ssh-rsa'), mpint(e), mpint(n)])), undefined);
  t.regex(checkBlob('ssh-rsa', Buffer.concat([sshString('ssh-rsa'), mpint(e), mpint(Buffer.alloc(64, 0xff))]))!, /512 bits/);
  t.regex(checkBlob('ssh-rsa', Buffer.concat([sshString('ssh-rsa'), mpint(e), sshString(n)]))!, /negative/);
  t.regex(checkBlob('ssh-rsa', Buffer.concat([sshString('ssh-rsa'), sshString(Buffer.from([0, 1, 0, 1])), mpint(n)]))!, /leading zero/);
  t.regex(checkBlob('ssh-rsa', Buffer.concat([sshString('ssh-rsa'), mpint(Buffer.from([2])), mpint(n)]))!, /odd/);
  t.regex(checkBlob('ssh-rsa', Buffer.concat([sshString('ssh-rsa'), mpint(e), mpint(Buffer.concat([n.subarray(1), Buffer.from([0xfe])]))]))!, /even/);
  t.regex(checkBlob('ssh-rsa', Buffer.concat([sshString('ssh-rsa'), sshString(Buffer.alloc(0)), mpint(n)]))!, /zero/);
  t.regex(checkBlob('ssh-dss', Buffer.concat([sshString('ssh-dss'), mpint(n), mpint(Buffer.alloc(20, 0x7f)), mpint(Buffer.from([2])), mpint(Buffer.from([3]))]))!, /q has 159 bits/);
  t.regex(checkBlob('ssh-dss', Buffer.concat([sshString('ssh-dss'), mpint(n), mpint(Buffer.alloc(20, 0xff)), mpint(Buffer.from([1])), mpint(Buffer.from([3]))]))!, /g is out of range/);
  t.is(checkBlob('ssh-dss', Buffer.concat([sshString('ssh-dss'), mpint(n), mpint(Buffer.alloc(20, 0xff)), mpint(Buffer.from([2])), mpint(Buffer.from([3]))])), undefined);
  t.regex(checkBlob('ssh-rsa', Buffer.concat([sshString('ssh-rsa'), Buffer.from([0xff, 0xff, 0xff, 0xff])]))!, /too long/);
});

test('parse cost grows linearly with the number of keys (30,000 keys against 3,000)', (t) => {
  const texts: string[] = [];
  const rsa = [rsaKey(2048, 'r1'), rsaKey(3072, 'r2')];
  const ec = [ecdsaKey('P-256', 'e1'), ecdsaKey('P-384', 'e2')];
  for (let i = 0; i < 30_000; i++) {
    const kind = i % 10;
    if (kind < 6) texts.push(randomEd25519(`user${i}@host`));
    else if (kind < 9) texts.push(rsa[i % 2]!.replace(/ r\d$/, ` user${i}@host`));
    else texts.push(ec[i % 2]!.replace(/ e\d$/, ` user${i}@host`));
  }
  // CPU time, so that other processes on a busy machine do not make the figure meaningless; a
  // ratio of two runs in this process, not a time bound (the speed itself is the benchmark's).
  const parseAll = (list: string[]): { n: number; cpuMs: number; ms: number } => {
    const cpu = process.cpuUsage();
    const started = performance.now();
    let n = 0;
    for (const text of list) if (parseKeyText(text, where)) n++;
    const used = process.cpuUsage(cpu);
    return { n, cpuMs: (used.user + used.system) / 1000, ms: performance.now() - started };
  };
  const few = texts.slice(0, 3_000);
  parseAll(few); // warm-up
  const small = parseAll(few);
  const large = parseAll(texts);
  t.is(small.n, 3_000);
  t.is(large.n, 30_000);
  const ratio = large.cpuMs / small.cpuMs;
  t.log(`parsed 30,000 keys (60% ed25519, 30% rsa, 10% ecdsa): ${large.cpuMs.toFixed(0)} ms CPU (${large.ms.toFixed(0)} ms wall), ${Math.round(30_000 / (large.cpuMs / 1000))} keys/s; ${ratio.toFixed(1)}x the CPU of 3,000`);
  // Linear is 10x; a cost quadratic in the number of keys would be 100x.
  t.true(ratio < 25, `${ratio.toFixed(1)}x`);
});

test('property: any text gives at most one key, and a key re-parses to itself', (t) => {
  const ed = randomEd25519();
  const [type, blob] = ed.split(' ') as [string, string];
  const pieces = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constantFrom('\n', '\\n', '\r', '\t', ' ', '"', 'ssh-rsa ', ED, type, blob, '=', '\0'),
  );
  fc.assert(
    fc.property(fc.array(pieces, { maxLength: 8 }), (parts) => {
      const text = parts.join('');
      const r = tryParseKeyText(text, where);
      if (r instanceof Error) return r instanceof InputError;
      return !r.text.includes('\n') && !r.text.includes('\r') && r.text === parseKeyText(r.text, where).text;
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), fc.constantFrom(' ', '  ', '\t', ' \t '), (comment, sep) => {
      const r = tryParseKeyText(`${type}${sep}${blob}${sep}${comment}`, where);
      if (r instanceof Error) return /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufffe\uffff]/.test(comment);
      t.deepEqual(parseKeyText(r.text, where), r);
      return r.blob === blob && r.comment === comment.replace(/^[ \t]+|[ \t]+$/g, '') && !r.text.includes('\n');
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
