import test from 'ava';
import fc from 'fast-check';
import { InputError } from '../../src/errors.js';
import type { Facts } from '../../src/sources/facts.js';
import {
  buildUrn,
  deriveIdentity,
  escapeHrnPart,
  hrnIsAuthorityOf,
  hrnToUrn,
  isValidUrn,
  parseUrn,
  hrnToPlSliceName,
  PL_SLICENAME_RE,
  sliceName,
  splitHrn,
  unescapeHrnPart,
  urnToHrn,
} from '../../src/identity/names.js';

// ---- the spec's table (section 4)

const TABLE: Array<[string, string, string]> = [
  ['authority', 'urn:publicid:IDN+emulab.net+authority+sa', 'emulab\\.net'],
  ['slice', 'urn:publicid:IDN+emulab.net:myproj+slice+myexp', 'emulab\\.net.myproj.myexp'],
  ['node', 'urn:publicid:IDN+emulab.net+node+pc123', 'emulab\\.net.pc123'],
  ['user', 'urn:publicid:IDN+emulab.net+user+alice', 'emulab\\.net.alice'],
];

for (const [type, urn, hrn] of TABLE) {
  test(`spec table: ${type} ${urn} <-> ${hrn}`, (t) => {
    t.true(isValidUrn(urn));
    t.is(urnToHrn(urn), hrn);
    t.is(hrnToUrn(hrn, type), urn);
  });
}

test('slice name: login base lowercased and alphanumeric only, name up to a ":" in [A-Za-z0-9_] with its case', (t) => {
  t.is(sliceName('myproj', 'myexp'), 'myproj_myexp');
  t.is(sliceName('Proj2', 'Exp2'), 'proj2_Exp2');
  t.is(sliceName('myproj-PG0', 'my-Exp_1'), 'myprojpg0_myExp_1');
  t.is(sliceName('emulab\\.net', 'x.y:z'), 'emulabnet_xy');
});

// The spec's examples (section 4), each checked there with SFA's own hrn_to_pl_slicename.
const PL_NAMES: Array<[string, string]> = [
  ['urn:publicid:IDN+emulab.net:myproj+slice+myexp', 'myproj_myexp'],
  ['urn:publicid:IDN+utah.cloudlab.us:myproj-PG0+slice+my-Exp_1', 'myprojpg0_myExp_1'],
  ['urn:publicid:IDN+emulab.net+slice+foo', 'emulabnet_foo'],
  ['urn:publicid:IDN+emulab.net:a:b_c+slice+x.y', 'bc_xy'],
];
for (const [urn, name] of PL_NAMES) {
  test(`hrn_to_pl_slicename: ${urn} -> ${name}, and deriving from that URN gives it`, (t) => {
    t.is(hrnToPlSliceName(urnToHrn(urn)), name);
    const id = deriveIdentity({ sliceUrn: f(urn, 'geni-get slice_urn'), domain: f('emulab.net'), nodeid: f('pc1') });
    t.is(id.slice.urn, urn, 'the given URN is kept as it is');
    t.is(id.slicename, name);
    t.regex(id.slicename, PL_SLICENAME_RE);
  });
}

test('dots in sub-authorities and names are escaped; a ":" in a name starts an id the HRN drops (xrn.py)', (t) => {
  t.is(urnToHrn('urn:publicid:IDN+wisc.cloudlab.us:a.b+slice+x.y'), 'wisc\\.cloudlab\\.us.a\\.b.x\\.y');
  t.is(urnToHrn('urn:publicid:IDN+emulab.net+sliver+123:45'), 'emulab\\.net.123');
  t.is(urnToHrn('urn:publicid:IDN+ch.geni.net:p+authority+sa'), 'ch\\.geni\\.net.p');
});

test('URN validity follows GeniHRN::IsValid', (t) => {
  for (const good of [
    'urn:publicid:IDN+emulab.net+node+pc123',
    'URN:PublicID:IDN+emulab.net+node+pc123',
    'urn:publicid:IDN+emulab.net:my_proj+slice+a-b',
    'urn:publicid:IDN+emulab.net+interface+pc1:eth0',
    'urn:publicid:IDN+emulab.net+user+a%20b',
    'urn:publicid:IDN+emulab.net+node+%41bc',
  ]) t.true(isValidUrn(good), good);
  for (const bad of [
    'urn:publicid:IDN+emulab.net+node',
    'urn:publicid:idn+emulab.net+node+pc1',
    'urn:publicid:IDN+emu_lab.net+node+pc1',
    'urn:publicid:IDN+emulab.net:+slice+x',
    'urn:publicid:IDN+emulab.net+no-de+pc1',
    'urn:publicid:IDN+emulab.net+node+pc 1',
    'urn:publicid:IDN+emulab.net+node+pc1;rm',
    'urn:publicid:IDN+emulab.net+node+a+b',
    'urn:publicid:IDN+emulab.net+node+%00',
    'urn:publicid:IDN+emulab.net+node+%7E',
    'urn:publicid:IDN+emulab.net+node+%zz',
    'urn:publicid:IDN+emulab.net+node+é',
    ' urn:publicid:IDN+emulab.net+node+pc1',
    'urn:publicid:IDN+emulab.net+node+pc1\n',
  ]) t.false(isValidUrn(bad), bad);
});

// ---- properties

const toplevel = fc.stringMatching(/^[A-Za-z0-9.-]{1,16}$/);
const subauth = fc.stringMatching(/^[A-Za-z0-9._-]{1,10}$/);
const type = fc.stringMatching(/^\w{1,8}$/).filter((s) => s !== 'authority');
// Names without ':' (xrn.py reads what follows a ':' as an id outside the HRN) and without '%'.
const name = fc.stringMatching(/^[-!$()*,./0-9=@A-Z_a-z]{1,16}$/);
const authority = fc.tuple(toplevel, fc.array(subauth, { maxLength: 3 })).map(([top, subs]) => [top, ...subs]);

test('property: built URNs are valid and parse back to their parts', (t) => {
  fc.assert(
    fc.property(authority, type, name, (auth, ty, nm) => {
      const urn = buildUrn(auth, ty, nm);
      const parsed = parseUrn(urn);
      return isValidUrn(urn) && parsed !== undefined && parsed.type === ty && parsed.name === nm && parsed.authority.join('|') === auth.join('|');
    }),
  );
  t.pass();
});

test('property: URN -> HRN -> URN is the identity (leaves and authorities)', (t) => {
  fc.assert(
    fc.property(authority, type, name, (auth, ty, nm) => {
      const urn = buildUrn(auth, ty, nm);
      const sa = buildUrn(auth, 'authority', 'sa');
      return hrnToUrn(urnToHrn(urn), ty) === urn && hrnToUrn(urnToHrn(sa), 'authority') === sa;
    }),
  );
  t.pass();
});

test('property: HRN escaping keeps every part intact and every unescaped dot is a separator', (t) => {
  fc.assert(
    fc.property(authority, type, name, (auth, ty, nm) => {
      const hrn = urnToHrn(buildUrn(auth, ty, nm));
      const parts = splitHrn(hrn);
      const separators = (hrn.match(/(?<!\\)\./g) ?? []).length;
      return (
        parts.map(unescapeHrnPart).join('|') === [...auth, nm].join('|') &&
        separators === auth.length &&
        parts.every((p) => !/(?<!\\)\./.test(p))
      );
    }),
  );
  fc.assert(fc.property(fc.string().filter((s) => !s.includes('\\')), (s) => unescapeHrnPart(escapeHrnPart(s)) === s));
  t.pass();
});

test('property: an authority HRN is an authority of everything below it, and not of its siblings', (t) => {
  fc.assert(
    fc.property(authority, type, name, subauth, (auth, ty, nm, other) => {
      const leaf = urnToHrn(buildUrn(auth, ty, nm));
      const sa = urnToHrn(buildUrn(auth, 'authority', 'sa'));
      const top = urnToHrn(buildUrn([auth[0]!], 'authority', 'sa'));
      const sibling = urnToHrn(buildUrn([auth[0]!, `${other}x`], 'authority', 'sa'));
      const siblingCovers = hrnIsAuthorityOf(sibling, leaf);
      const expectSibling = auth.length > 1 && auth[1]!.toLowerCase() === `${other}x`.toLowerCase();
      return hrnIsAuthorityOf(sa, leaf) && hrnIsAuthorityOf(top, leaf) && !hrnIsAuthorityOf(leaf, top) === (leaf !== top) && siblingCovers === expectSibling;
    }),
  );
  t.pass();
});

test('property: a character outside the grammar anywhere in the name makes the URN invalid', (t) => {
  const forbidden = fc.constantFrom(' ', ';', '`', '"', "'", '+', '#', '\\', '~', '<', '>', '&', '|', '?', '[', '{', '\n', '\t', 'é', '\u0000');
  fc.assert(
    fc.property(authority, type, name, forbidden, fc.nat(), (auth, ty, nm, bad, at) => {
      const i = at % (nm.length + 1);
      return !isValidUrn(`urn:publicid:IDN+${auth.join(':')}+${ty}+${nm.slice(0, i)}${bad}${nm.slice(i)}`);
    }),
  );
  t.pass();
});

// ---- deriving the identity

const f = (value: string, source = 'test', line?: number) => ({ value, where: line === undefined ? { source } : { source, line } });

test('derive: Emulab boot files', (t) => {
  const id = deriveIdentity({
    hostname: f('node0.myexp.myproj.emulab.net'),
    nickname: f('node0.myexp.myproj', 'boot/nickname', 1),
    nodeid: f('pc123', 'boot/nodeid', 1),
    domain: f('emulab.net', 'boot/mydomain', 1),
    nodeuuid: f('5F0C2A9E-3B1D-11E0-9E2B-001143E453FE'),
  });
  t.is(id.slicename, 'myproj_myexp');
  t.is(id.slice.urn, 'urn:publicid:IDN+emulab.net:myproj+slice+myexp');
  t.is(id.node.urn, 'urn:publicid:IDN+emulab.net+node+pc123');
  t.is(id.node.uuid, '5f0c2a9e-3b1d-11e0-9e2b-001143e453fe');
  t.is(id.authority.hrn, 'emulab\\.net');
  t.deepEqual(id.origins.slice, { source: 'boot/nickname', line: 1 });
  t.deepEqual(id.origins.node, { source: 'boot/nodeid', line: 1 });
});

test('derive: the host name alone gives lowercased parts; domain is the host name minus the nickname', (t) => {
  const id = deriveIdentity({ hostname: f('Node2.Exp2.Proj2.wisc.cloudlab.us.') });
  t.is(id.slicename, 'proj2_exp2');
  t.is(id.node.urn, 'urn:publicid:IDN+wisc.cloudlab.us+node+node2');
  const id2 = deriveIdentity({ hostname: f('node0.myexp.myproj-pg0.utah.cloudlab.us'), nickname: f('node0.myexp.myproj-pg0') });
  t.is(id2.domain, 'utah.cloudlab.us');
  t.is(id2.slice.urn, 'urn:publicid:IDN+utah.cloudlab.us:myproj-pg0+slice+myexp');
  t.is(id2.node.urn, 'urn:publicid:IDN+utah.cloudlab.us+node+node0');
});

test('derive: geni-get slice URN wins over the nickname; client_id names the node when no nodeid', (t) => {
  const id = deriveIdentity({
    hostname: f('node1.myslice.myproj-pg0.utah.cloudlab.us'),
    nickname: f('node1.myslice.myproj-pg0'),
    domain: f('utah.cloudlab.us'),
    sliceUrn: f('urn:publicid:IDN+utah.cloudlab.us:myproj+slice+myslice', 'geni-get slice_urn'),
    clientId: f('node1', 'geni-get client_id'),
  });
  t.is(id.slicename, 'myproj_myslice');
  t.is(id.node.urn, 'urn:publicid:IDN+utah.cloudlab.us+node+node1');
  t.deepEqual(id.origins.slice, { source: 'geni-get slice_urn' });
});

test('derive: a slice of another authority keeps its URN; the node stays in the testbed domain', (t) => {
  const id = deriveIdentity({
    hostname: f('node0.s1.p1.emulab.net'),
    nickname: f('node0.s1.p1'),
    sliceUrn: f('urn:publicid:IDN+ch.geni.net:gproj+slice+gslice'),
  });
  t.is(id.domain, 'emulab.net');
  t.is(id.slice.hrn, 'ch\\.geni\\.net.gproj.gslice');
  t.is(id.slicename, 'gproj_gslice');
  t.is(id.node.urn, 'urn:publicid:IDN+emulab.net+node+node0');
});

test('derive: config facts (project, experiment, node URN) override', (t) => {
  const id = deriveIdentity({
    hostname: f('localhost'),
    project: f('labx', 'cfg', 3),
    experiment: f('run7', 'cfg', 4),
    nodeUrn: f('urn:publicid:IDN+apt.emulab.net+node+apt042', 'cfg', 5),
  });
  t.is(id.domain, 'apt.emulab.net');
  t.is(id.slice.urn, 'urn:publicid:IDN+apt.emulab.net:labx+slice+run7');
  t.is(id.slicename, 'labx_run7');
  t.is(id.node.hrn, 'apt\\.emulab\\.net.apt042');
  const id2 = deriveIdentity({ sliceUrn: f('urn:publicid:IDN+emulab.net:a+slice+b'), project: f('c'), domain: f('emulab.net'), nodeid: f('pc1') });
  t.is(id2.slice.urn, 'urn:publicid:IDN+emulab.net:c+slice+b');
});

function refused(t: import('ava').ExecutionContext, facts: Facts, pattern: RegExp): InputError {
  const err = t.throws(() => deriveIdentity(facts), { instanceOf: InputError });
  t.regex(err!.message, pattern);
  return err as InputError;
}

test('derive refuses host names that name no slice, with a hint to set the identity in the config', (t) => {
  for (const h of ['localhost', 'localhost.localdomain', 'pc123.emulab.net', 'a.b.c']) {
    const err = refused(t, { hostname: f(h, '/etc/hostname', 1) }, /names no slice|fewer than 4 labels/);
    t.is(err.value, h);
    t.deepEqual(err.where, { source: '/etc/hostname', line: 1 });
    t.regex(err.message, /slice_urn/);
  }
  refused(t, {}, /nothing names/);
  refused(t, { hostname: f('node0.my exp.myproj.emulab.net') }, /label "my exp"/);
  refused(t, { hostname: f('pc1.emulab.net'), nickname: f('node0.e.p') }, /does not start with the nickname/);
});

test('derive refuses nicknames, URNs and names outside the grammar, naming the value', (t) => {
  const err = refused(t, { nickname: f('node0.my exp;rm -rf /.myproj', 'boot/nickname', 1), domain: f('emulab.net') }, /experiment "my exp;rm -rf \/"/);
  t.is(err.value, 'node0.my exp;rm -rf /.myproj');
  refused(t, { nickname: f('a.b'), domain: f('emulab.net') }, /<vname>\.<eid>\.<pid>/);
  refused(t, { nickname: f('a.b.c'), domain: f('emu lab.net') }, /not a testbed domain/);
  refused(t, { sliceUrn: f('urn:publicid:IDN+emulab.net:p+slice+a b'), domain: f('emulab.net'), nodeid: f('pc1') }, /GENI URN grammar/);
  refused(t, { sliceUrn: f('urn:publicid:IDN+emulab.net:p+node+x'), domain: f('emulab.net'), nodeid: f('pc1') }, /not a slice URN/);
  // SFA's rule leaves nothing of these names: outside PLC's grammar, refused rather than written.
  refused(t, { sliceUrn: f('urn:publicid:IDN+emulab.net:p+slice+-.-', 'geni-get slice_urn'), domain: f('emulab.net'), nodeid: f('pc1') }, /slice name "p_" .*hrn_to_pl_slicename/);
  refused(t, { sliceUrn: f('urn:publicid:IDN+emulab.net:p+slice+:x'), domain: f('emulab.net'), nodeid: f('pc1') }, /slice name "p_"/);
  refused(t, { sliceUrn: f('urn:publicid:IDN+emulab.net:_-_+slice+x'), domain: f('emulab.net'), nodeid: f('pc1') }, /slice name "_x"/);
  refused(t, { nickname: f('a.---.c', 'boot/nickname', 1), domain: f('emulab.net') }, /slice name "c_"/);
  refused(t, { nickname: f('a.b.c'), domain: f('emulab.net'), nodeid: f('pc/1') }, /node name "pc\/1"/);
  refused(t, { nickname: f('a.b.c'), domain: f('emulab.net'), nodeuuid: f('not-a-uuid') }, /not a UUID/);
  refused(t, { nickname: f('a.b.c'), domain: f('emulab.net'), nodeUrn: f('urn:publicid:IDN+emulab.net+slice+x') }, /not a node URN/);
});

test('property: deriving never yields an identity outside the grammar; refusals are InputErrors', (t) => {
  const anyLabel = fc.string({ minLength: 0, maxLength: 12 });
  fc.assert(
    fc.property(anyLabel, anyLabel, anyLabel, fc.constantFrom('emulab.net', 'utah.cloudlab.us', 'bad domain'), (v, e, p, d) => {
      try {
        const id = deriveIdentity({ nickname: f(`${v}.${e}.${p}`), domain: f(d), hostname: f(`${v}.${e}.${p}.${d}`) });
        return (
          isValidUrn(id.slice.urn) &&
          isValidUrn(id.node.urn) &&
          PL_SLICENAME_RE.test(id.slicename) &&
          id.slicename === hrnToPlSliceName(id.slice.hrn) &&
          id.slicename === `${p.toLowerCase().replace(/[^a-z0-9]/g, '')}_${e.replace(/[^A-Za-z0-9_]/g, '')}`
        );
      } catch (err) {
        return err instanceof InputError;
      }
    }),
    { numRuns: 300 },
  );
  t.pass();
});
