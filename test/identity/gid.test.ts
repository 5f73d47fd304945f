import test from 'ava';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buildGid, generateRsaKey, gidCommonName, newSerial, parseGid, parseGidChain, parseGidWithForge, splitPem, verifyGidChain } from '../../src/identity/gid.js';
import { tempDir } from '../helpers/fixtures.js';

const openssl = (args: string[], input?: string): string =>
  execFileSync('openssl', args, { encoding: 'utf8', ...(input === undefined ? {} : { input }), stdio: ['pipe', 'pipe', 'pipe'] });

// Three keys for the whole file (RSA key generation is the slow part).
const keysReady = Promise.all([generateRsaKey(), generateRsaKey(), generateRsaKey()]);

const AUTH_URN = 'urn:publicid:IDN+emulab.net+authority+sa';
const NODE_URN = 'urn:publicid:IDN+emulab.net+node+pc123';
const SLICE_URN = 'urn:publicid:IDN+emulab.net:myproj+slice+myexp';
const NOW = new Date('2030-03-01T12:00:00.000Z');

async function pair(opts: { authUrn?: string; leafUrn?: string; now?: Date; validityDays?: number; email?: string } = {}) {
  const [ak, lk] = await keysReady;
  const now = opts.now ?? NOW;
  const auth = buildGid({ urn: opts.authUrn ?? AUTH_URN, uuid: crypto.randomUUID(), subjectKey: ak!, ca: true, now, validityDays: opts.validityDays ?? 1826 });
  const leaf = buildGid({
    urn: opts.leafUrn ?? NODE_URN,
    uuid: '5F0C2A9E-3B1D-11E0-9E2B-001143E453FE',
    subjectKey: lk!,
    issuer: { cert: auth, key: ak! },
    ca: false,
    now,
    validityDays: opts.validityDays ?? 1826,
    ...(opts.email ? { email: opts.email } : {}),
  });
  return { auth, leaf, chain: leaf + auth };
}

test('openssl -text shows the spec: v3, sha256WithRSA, RSA 2048, CN=<HRN> only, basicConstraints critical then subjectAltName', async (t) => {
  const { leaf, auth } = await pair();
  const text = openssl(['x509', '-noout', '-text', '-nameopt', 'sep_comma_plus,sname,utf8'], leaf);
  t.regex(text, /Version: 3 \(0x2\)/);
  t.regex(text, /Signature Algorithm: sha256WithRSAEncryption/);
  t.regex(text, /Public-Key: \(2048 bit\)/);
  t.regex(text, /\n\s*Subject: CN=emulab\\\.net\.pc123\n/);
  t.regex(text, /\n\s*Issuer: CN=emulab\\\.net\n/);
  const exts = [...text.matchAll(/^\s+X509v3 ([^:\n]+):(.*)$/gm)].map((m) => `${m[1]}:${m[2]}`.trim());
  t.deepEqual(exts, ['extensions:', 'Basic Constraints: critical', 'Subject Alternative Name:']);
  t.regex(text, /Basic Constraints: critical\n\s+CA:FALSE\n/);
  t.regex(text, /Subject Alternative Name: \n\s+URI:urn:publicid:IDN\+emulab\.net\+node\+pc123, URI:urn:uuid:5f0c2a9e-3b1d-11e0-9e2b-001143e453fe\n/);
  const authText = openssl(['x509', '-noout', '-text', '-nameopt', 'sep_comma_plus,sname,utf8'], auth);
  t.regex(authText, /Basic Constraints: critical\n\s+CA:TRUE\n/);
  t.regex(authText, /\n\s*Subject: CN=emulab\\\.net\n/);
  t.regex(authText, /URI:urn:publicid:IDN\+emulab\.net\+authority\+sa, URI:urn:uuid:/);
});

test('an HRN with backslashes round-trips exactly through the CN (UTF8String), openssl and our parser', async (t) => {
  const { leaf } = await pair({ leafUrn: SLICE_URN });
  t.is(openssl(['x509', '-noout', '-subject', '-nameopt', 'RFC2253'], leaf).trim(), 'subject=CN=emulab\\\\.net.myproj.myexp');
  t.is(openssl(['x509', '-noout', '-subject', '-nameopt', 'sep_comma_plus,sname,utf8'], leaf).trim(), 'subject=CN=emulab\\.net.myproj.myexp');
  t.regex(openssl(['asn1parse'], leaf), /UTF8STRING\s+:emulab\\\.net\.myproj\.myexp\n/);
  const info = parseGid(leaf);
  t.is(info.cn, 'emulab\\.net.myproj.myexp');
  t.is(info.hrn, 'emulab\\.net.myproj.myexp');
  t.is(info.urn, SLICE_URN);
  t.is(info.type, 'slice');
  t.is(new crypto.X509Certificate(leaf).subject, 'CN=emulab\\\\.net.myproj.myexp');
});

test('validity is back-dated one hour and lasts validityDays; serials are positive, random and unique', async (t) => {
  const { leaf } = await pair({ validityDays: 10 });
  const info = parseGid(leaf);
  t.is(info.notBefore.toISOString(), '2030-03-01T11:00:00.000Z');
  t.is(info.notAfter.toISOString(), '2030-03-11T12:00:00.000Z');
  t.false(info.ca);
  t.deepEqual(info.extensions, ['basicConstraints!', 'subjectAltName']);
  t.is(info.subjectAttributes, 1);
  t.is(info.uuid, '5f0c2a9e-3b1d-11e0-9e2b-001143e453fe');
  t.is(info.serial, new crypto.X509Certificate(leaf).serialNumber.toLowerCase());
  const serials = Array.from({ length: 200 }, newSerial);
  t.is(new Set(serials).size, 200);
  for (const s of serials) t.true(/^[0-7][0-9a-f]{31}$/.test(s) && !s.startsWith('00'), s);
});

test('email goes into subjectAltName after the UUID when known', async (t) => {
  const { leaf } = await pair({ email: 'alice@example.edu' });
  t.regex(openssl(['x509', '-noout', '-ext', 'subjectAltName'], leaf), /URI:urn:uuid:[0-9a-f-]+, email:alice@example\.edu/);
  t.is(parseGid(leaf).email, 'alice@example.edu');
});

test('openssl verify accepts leaf + authority; our chain check agrees', async (t) => {
  const { auth, chain, leaf } = await pair();
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'auth.pem'), auth);
  fs.writeFileSync(path.join(dir, 'leaf.pem'), leaf);
  t.regex(openssl(['verify', '-attime', String(NOW.getTime() / 1000), '-CAfile', path.join(dir, 'auth.pem'), path.join(dir, 'leaf.pem')]), /leaf\.pem: OK/);
  const parsed = parseGidChain(chain);
  t.is(parsed.length, 2);
  t.deepEqual(splitPem(chain), [leaf, auth]);
  const check = verifyGidChain(parsed, NOW);
  t.deepEqual(check.problems, []);
  t.true(check.ok);
  t.true(check.selfRooted);
});

test('chain check refuses: wrong signer, non-CA parent, parent not an authority, HRN not under the parent, expiry', async (t) => {
  const [ak, lk, ok] = await keysReady;
  const good = await pair();
  // signed by another key under the same name
  const otherAuth = buildGid({ urn: AUTH_URN, uuid: crypto.randomUUID(), subjectKey: ok!, ca: true, now: NOW, validityDays: 30 });
  let check = verifyGidChain(parseGidChain(good.leaf + otherAuth), NOW);
  t.false(check.ok);
  t.true(check.problems.some((p) => /was not signed by/.test(p)));
  // parent CA:FALSE and of type node
  const nodeParent = buildGid({ urn: 'urn:publicid:IDN+emulab.net+node+boss', uuid: crypto.randomUUID(), subjectKey: ak!, ca: false, now: NOW, validityDays: 30 });
  const child = buildGid({ urn: NODE_URN, uuid: crypto.randomUUID(), subjectKey: lk!, issuer: { cert: nodeParent, key: ak! }, ca: false, now: NOW, validityDays: 30 });
  check = verifyGidChain(parseGidChain(child + nodeParent), NOW);
  t.true(check.problems.some((p) => /is not CA:TRUE/.test(p)));
  t.true(check.problems.some((p) => /not authority/.test(p)));
  // authority of another domain
  const foreign = await pair({ authUrn: 'urn:publicid:IDN+utah.cloudlab.us+authority+sa' });
  check = verifyGidChain(parseGidChain(foreign.chain), NOW);
  t.true(check.problems.some((p) => /HRN utah\\\.cloudlab\\\.us is not an authority of emulab\\\.net\.pc123/.test(p)));
  // expired / not yet valid
  t.true(verifyGidChain(parseGidChain(good.chain), new Date('2040-01-01')).problems.some((p) => /expired/.test(p)));
  t.true(verifyGidChain(parseGidChain(good.chain), new Date('2029-01-01')).problems.some((p) => /not valid before/.test(p)));
  // reversed order
  t.false(verifyGidChain(parseGidChain(good.auth + good.leaf), NOW).ok);
  t.false(verifyGidChain([], NOW).ok);
});

test('an operator CA with a multi-attribute subject: the issuer name is copied exactly and openssl verifies', async (t) => {
  const dir = tempDir();
  const key = path.join(dir, 'op.key');
  const cert = path.join(dir, 'op.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '30',
    '-subj', '/C=US/O=Test Lab/CN=emulab\\\\.net',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', `subjectAltName=URI:${AUTH_URN},URI:urn:uuid:11111111-2222-4333-8444-555555555555`,
  ], { stdio: 'ignore' });
  const [, lk] = await keysReady;
  const opPem = fs.readFileSync(cert, 'utf8');
  const leaf = buildGid({ urn: NODE_URN, uuid: crypto.randomUUID(), subjectKey: lk!, issuer: { cert: opPem, key: fs.readFileSync(key, 'utf8') }, ca: false, now: new Date(), validityDays: 5 });
  fs.writeFileSync(path.join(dir, 'leaf.pem'), leaf);
  t.regex(openssl(['verify', '-CAfile', cert, path.join(dir, 'leaf.pem')]), /OK/);
  t.is(
    openssl(['x509', '-noout', '-issuer', '-nameopt', 'sep_comma_plus,sname,utf8'], leaf).trim(),
    'issuer=C=US,O=Test Lab,CN=emulab\\.net',
  );
  const check = verifyGidChain(parseGidChain(leaf + opPem));
  t.deepEqual(check.problems, []);
  t.true(check.ok);
  t.deepEqual(check.warnings, ['certificate 2 (emulab\\.net): subject has 3 attributes, not exactly CN']);
});

test('buildGid refuses a non-RSA issuer key', async (t) => {
  const [, lk] = await keysReady;
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const auth = (await pair()).auth;
  t.throws(() => buildGid({ urn: NODE_URN, uuid: crypto.randomUUID(), subjectKey: lk!, issuer: { cert: auth, key: ec }, ca: false, now: NOW, validityDays: 1 }), { message: /not RSA/ });
});

test('an SFA-style Python reader (stdlib only) finds the URN in subjectAltName and the HRN in the CN', async (t) => {
  const { chain } = await pair({ leafUrn: SLICE_URN });
  const dir = tempDir();
  const file = path.join(dir, 'slice.gid');
  fs.writeFileSync(file, chain);
  // Split the file into PEM certificates, decode the first, read SAN URIs and the subject CN.
  const script = [
    'import json, re, ssl, sys, tempfile',
    'text = open(sys.argv[1]).read()',
    'pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)',
    'f = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False); f.write(pems[0] + "\\n"); f.close()',
    'cert = ssl._ssl._test_decode_cert(f.name)',
    'uris = [v for k, v in cert["subjectAltName"] if k == "URI"]',
    'cn = [v for rdn in cert["subject"] for k, v in rdn if k == "commonName"]',
    'print(json.dumps({"count": len(pems), "uris": uris, "cn": cn}))',
  ].join('\n');
  const out = JSON.parse(execFileSync('python3', ['-c', script, file], { encoding: 'utf8' })) as { count: number; uris: string[]; cn: string[] };
  t.is(out.count, 2);
  t.is(out.uris[0], SLICE_URN);
  t.regex(out.uris[1]!, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.deepEqual(out.cn, ['emulab\\.net.myproj.myexp']);
});

test('an HRN over 64 characters gives CN = the UUID (X.509 ub-common-name); 64 exactly is still the HRN; readers use the URN', async (t) => {
  t.is(gidCommonName('x'.repeat(64), 'U'), 'x'.repeat(64));
  t.is(gidCommonName('x'.repeat(65), 'ABC'), 'abc');
  const longUrn = `urn:publicid:IDN+emulab.net:${'p'.repeat(48)}+slice+e-19-characters-xx`;
  const { leaf, chain } = await pair({ leafUrn: longUrn });
  const info = parseGid(leaf);
  t.true(info.hrn!.length > 64);
  t.is(info.urn, longUrn);
  t.is(info.cn, '5f0c2a9e-3b1d-11e0-9e2b-001143e453fe');
  t.deepEqual(parseGidWithForge(leaf).cn, info.cn);
  const check = verifyGidChain(parseGidChain(chain), NOW);
  t.deepEqual([check.ok, check.problems, check.warnings], [true, [], []]);
  // A long HRN in the CN would be outside X.509's bound; our check says which CN it expects.
  const wrong = { ...parseGidChain(chain)[0]!, cn: info.hrn };
  t.regex(verifyGidChain([wrong, parseGidChain(chain)[1]!], NOW).warnings.join('\n'), /is not the UUID \(the HRN is over 64 characters\)/);
  t.regex(openssl(['x509', '-noout', '-subject', '-nameopt', 'sep_comma_plus,sname,utf8'], leaf), /^subject=CN=5f0c2a9e-3b1d-11e0-9e2b-001143e453fe\n$/);
});

// parseGid reads certificates with a small DER reader of its own so that a daemon with current
// GIDs never loads node-forge; node-forge's reader is the reference it must agree with.
test('parseGid agrees with the node-forge reader on GIDs and on certificates openssl makes', async (t) => {
  const { auth, leaf } = await pair({ email: 'op@emulab.net' });
  const slice = (await pair({ leafUrn: SLICE_URN })).leaf;
  const dir = tempDir();
  const key = path.join(dir, 'k.pem');
  fs.writeFileSync(key, (await keysReady)[2]!);
  const made = [
    // GeneralizedTime (notAfter past 2049), openssl's default v3 extensions
    openssl(['req', '-x509', '-key', key, '-days', '20000', '-subj', '/CN=far future/O=Example', '-set_serial', '0x80ff']),
    // a multi-attribute subject, non-critical basicConstraints, a SAN with URI, email and DNS names
    openssl([
      'req', '-x509', '-key', key, '-days', '30', '-subj', '/C=US/O=Utah/CN=emulab.net',
      '-addext', 'basicConstraints=CA:TRUE', '-addext', 'subjectAltName=URI:urn:publicid:IDN+emulab.net+authority+sa,URI:URN:UUID:ABCDEF00-0000-4000-8000-000000000001,email:a@b.c,DNS:x.y',
      '-set_serial', '1',
    ]),
    // UTF-8 in the CN
    openssl(['req', '-x509', '-key', key, '-days', '1', '-utf8', '-subj', '/CN=n\u00f8de\u00e9']),
    // an EC key (the BIT STRING of the public key is not ASN.1)
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'ec.key'), '-days', '1', '-subj', '/CN=ec']),
  ];
  for (const pem of [auth, leaf, slice, ...made]) {
    const ours = parseGid(pem);
    t.deepEqual(ours, parseGidWithForge(pem));
    t.false(Number.isNaN(ours.notAfter.getTime()));
  }
  const far = parseGid(made[0]!);
  t.true(far.notAfter.getUTCFullYear() > 2049);
  t.is(far.serial, '80ff');
  t.is(far.subjectAttributes, 2);
  const sa = parseGid(made[1]!);
  t.deepEqual([sa.urn, sa.uuid, sa.email, sa.ca, sa.type, sa.cn], ['urn:publicid:IDN+emulab.net+authority+sa', 'abcdef00-0000-4000-8000-000000000001', 'a@b.c', true, 'authority', 'emulab.net']);
  t.is(parseGid(made[2]!).cn, 'n\u00f8de\u00e9');
});

test('a PEM block the small reader does not take (spaces in the base64) is read by node-forge alike', async (t) => {
  const { leaf } = await pair();
  const spaced = leaf.replace(/\n(?!-----END)/g, ' \n').replace('-----BEGIN CERTIFICATE----- \n', '-----BEGIN CERTIFICATE-----\n');
  t.not(spaced, leaf);
  t.deepEqual({ ...parseGid(spaced), pem: '' }, { ...parseGid(leaf), pem: '' });
  t.throws(() => parseGid('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'));
  t.throws(() => parseGid('no certificate'), { message: 'no PEM certificate found' });
});

test('parsing a GID does not load node-forge; building one does', async (t) => {
  const { leaf } = await pair();
  const dir = tempDir();
  const file = path.join(dir, 'leaf.pem');
  fs.writeFileSync(file, leaf);
  const gid = new URL('../../src/identity/gid.ts', import.meta.url).href;
  const script = `
    import { createRequire } from 'node:module';
    import fs from 'node:fs';
    const m = await import(${JSON.stringify(gid)});
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('node-forge'));
    const info = m.parseGid(fs.readFileSync(${JSON.stringify(file)}, 'utf8'));
    const afterParse = loaded();
    m.buildGid({ urn: info.urn, uuid: info.uuid, subjectKey: ${JSON.stringify((await keysReady)[0])}, ca: true, now: new Date(), validityDays: 1 });
    console.log(JSON.stringify({ urn: info.urn, afterParse, afterBuild: loaded() }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })) as Record<string, unknown>;
  t.deepEqual(out, { urn: NODE_URN, afterParse: false, afterBuild: true });
});
