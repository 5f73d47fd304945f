// Names: GENI URNs (ProtoGENI GeniHRN::IsValid), SFA HRNs (sfa/util/xrn.py), the PlanetLab-style
// slice name, and the derivation of this node's identity from facts (spec section 4).
import { InputError, type Where } from '../errors.js';
import type { Fact, Facts } from '../sources/facts.js';
import type { Identity } from './types.js';

export const URN_PREFIX = 'urn:publicid:IDN';

/** Grammar pieces (spec section 4, ProtoGENI GeniHRN::IsValid). */
export const TOPLEVEL_RE = /^[A-Za-z0-9.-]+$/;
export const SUBAUTH_RE = /^[A-Za-z0-9._-]+$/;
export const TYPE_RE = /^\w+$/;
export const NAME_RE = /^(?:[-!$()*,./0-9:=@A-Z_a-z]|%[0-9A-Fa-f]{2})+$/;
const URN_RE =
  /^[uU][rR][nN]:[pP][uU][bB][lL][iI][cC][iI][dD]:IDN\+[A-Za-z0-9.-]+(?::[A-Za-z0-9._-]+)*\+\w+\+(?:[-!$()*,./0-9:=@A-Z_a-z]|%[0-9A-Fa-f]{2})+$/;

/** A node name sliceid builds into a node URN (Emulab node ids, vnames). */
export const NODE_NAME_RE = /^[A-Za-z0-9][-.@\w]*$/;
/** A testbed domain: DNS labels. */
export const DOMAIN_RE = /^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*$/;
/** Emulab nickname parts (spec section 5), non-empty. */
export const NICKNAME_PART_RE = /^[-@\w]+$/;
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export const URN_RULE =
  'is outside the GENI URN grammar urn:publicid:IDN+<toplevel>[:<subauth>]*+<type>+<name> ' +
  '(toplevel [A-Za-z0-9.-]+, subauth [A-Za-z0-9._-]+, type \\w+, name ([-!$()*,./0-9:=@A-Z_a-z]|%XX)+)';

export interface ParsedUrn {
  /** Top-level authority first, then sub-authorities. */
  readonly authority: readonly string[];
  readonly type: string;
  readonly name: string;
}

/** ProtoGENI's Unescape: %-encoded unreserved characters (RFC 3986 2.3) become the character. */
export function unescapeUrn(urn: string): string {
  return urn.replace(/%([0-9A-Fa-f]{2})/g, (all, hex: string) => {
    const c = parseInt(hex, 16);
    const unreserved =
      c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e || (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    return unreserved ? String.fromCharCode(c) : all;
  });
}

/** GeniHRN::IsValid: no %00, then the grammar on the unescaped text. */
export function isValidUrn(urn: string): boolean {
  if (/%00/.test(urn)) return false;
  return URN_RE.test(unescapeUrn(urn));
}

/** Split a valid URN into its parts (as written), or undefined when it is not valid. */
export function parseUrn(urn: string): ParsedUrn | undefined {
  if (!isValidUrn(urn)) return undefined;
  const parts = urn.split('+');
  if (parts.length !== 4) return undefined;
  return { authority: parts[1]!.split(':'), type: parts[2]!, name: parts[3]! };
}

/** Build a URN and check it against the grammar (throws a plain Error when it does not fit). */
export function buildUrn(authority: readonly string[], type: string, name: string): string {
  const urn = `${URN_PREFIX}+${authority.join(':')}+${type}+${name}`;
  if (!isValidUrn(urn) || !parseUrn(urn)) throw new Error(`${JSON.stringify(urn)} ${URN_RULE}`);
  return urn;
}

/** The authority URN of a top-level (and optional sub-) authority: name `sa`. */
export function authorityUrn(authority: readonly string[]): string {
  return buildUrn(authority, 'authority', 'sa');
}

/** xrn.py escape: every `.` of an HRN part becomes `\.`. */
export function escapeHrnPart(part: string): string {
  return part.replace(/\./g, '\\.');
}

/** xrn.py unescape: `\.` becomes `.`. */
export function unescapeHrnPart(part: string): string {
  return part.replace(/\\\./g, '.');
}

/** Split an HRN on its unescaped dots; parts keep their `\.` escapes (xrn.py hrn_split). */
export function splitHrn(hrn: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < hrn.length; i++) {
    const c = hrn[i]!;
    if (c === '\\' && hrn[i + 1] === '.') {
      cur += '\\.';
      i++;
    } else if (c === '.') {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts;
}

/**
 * URN -> HRN as SFA's xrn.py does it: authority parts with `.` escaped, joined by `.`; an
 * authority of name `sa` is the authority alone; otherwise `.<name>` with its dots escaped. As in
 * xrn.py, a `:` in the name starts an id that the HRN does not carry.
 */
export function urnToHrn(urn: string): string {
  const parsed = parseUrn(urn);
  if (!parsed) throw new Error(`${JSON.stringify(urn)} ${URN_RULE}`);
  const auth = parsed.authority.filter((p) => p !== '').map(escapeHrnPart);
  if (parsed.type === 'authority') {
    return parsed.name === 'sa' ? auth.join('.') : [...auth, escapeHrnPart(parsed.name)].join('.');
  }
  const name = parsed.name.split(':')[0]!;
  return [...auth, escapeHrnPart(name)].join('.');
}

/**
 * HRN -> URN (xrn.py hrn_to_urn): for type `authority` every part is authority and the name is
 * `sa`; otherwise the last part is the name. Parts are unescaped.
 */
export function hrnToUrn(hrn: string, type: string): string {
  const parts = splitHrn(hrn).map(unescapeHrnPart);
  if (type === 'authority') return buildUrn(parts, 'authority', 'sa');
  if (parts.length < 2) throw new Error(`HRN ${JSON.stringify(hrn)} has no authority part`);
  return buildUrn(parts.slice(0, -1), type, parts[parts.length - 1]!);
}

/** True when `parent` is `child` or one of its authorities (compared part by part, ignoring case). */
export function hrnIsAuthorityOf(parent: string, child: string): boolean {
  const p = splitHrn(parent.toLowerCase());
  const c = splitHrn(child.toLowerCase());
  return p.length <= c.length && p.every((part, i) => part === c[i]);
}

/** PLC's slice name grammar (PLCAPI): what SFA's rule below must give for the name to be usable. */
export const PL_SLICENAME_RE = /^[a-z0-9]+_[a-zA-Z0-9_]+$/;

/**
 * PlanetLab-style slice name from a login base and a slice name, by SFA's rule (`PlXrn.pl_slicename`,
 * spec section 4): the login base lowercased with every character outside [a-zA-Z0-9] removed, `_`,
 * the name up to a first `:` with every character outside [a-zA-Z0-9_] removed, its case kept.
 */
export function sliceName(loginBase: string, slice: string): string {
  const base = loginBase.toLowerCase().replace(/[^a-z0-9]/g, '');
  const name = slice.split(':')[0]!.replace(/[^a-zA-Z0-9_]/g, '');
  return `${base}_${name}`;
}

/**
 * SFA's `hrn_to_pl_slicename` (sfa/planetlab/plxrn.py): the login base is the HRN's last authority
 * part (escapes and all: they are removed with the other characters), the name its leaf. A tool that
 * reads the HRN from /etc/slice.gid this way gets the string sliceid writes to /etc/slicename.
 */
export function hrnToPlSliceName(hrn: string): string {
  const parts = splitHrn(hrn);
  const leaf = parts.pop()!;
  return sliceName(parts.at(-1) ?? '', leaf);
}

/** A version 4 or any RFC 4122 UUID in lowercase dashed form, or undefined. */
export function normaliseUuid(value: string): string | undefined {
  return UUID_RE.test(value) ? value.toLowerCase() : undefined;
}

// ---------------------------------------------------------------------------------------------
// Deriving the identity

const SET_IN_CONFIG =
  'Set the identity in the config file (/etc/sliceid/sliceid.toml), e.g. [facts] slice_urn = ' +
  '"urn:publicid:IDN+<domain>:<project>+slice+<experiment>", domain = "<domain>", nodeid = "<node>"';

interface Part {
  readonly value: string;
  readonly where: Where;
}

function refuse(fact: Fact | Part, rule: string, hint?: string): never {
  throw new InputError(fact.where, fact.value, rule, hint);
}

interface HostParts {
  vname: Part;
  eid: Part;
  pid: Part;
  domain: Part;
}

/**
 * This node's identity from its facts (spec section 4). Throws InputError, naming the fact's
 * source, value and rule, for anything outside the grammar or a host name that names no slice.
 */
export function deriveIdentity(facts: Facts): Identity {
  // Nickname <vname>.<eid>.<pid> (Emulab boot file, or config).
  let nick: { vname: Part; eid: Part; pid: Part } | undefined;
  if (facts.nickname) {
    const n = facts.nickname;
    const parts = n.value.split('.');
    if (parts.length !== 3) refuse(n, 'is not an Emulab nickname <vname>.<eid>.<pid> (three parts separated by dots)');
    const [vname, eid, pid] = parts as [string, string, string];
    for (const [what, v] of [['node (vname)', vname], ['experiment', eid], ['project', pid]] as const) {
      if (!NICKNAME_PART_RE.test(v)) refuse(n, `has ${what} ${JSON.stringify(v)} outside the nickname grammar [-@\\w]+`);
    }
    nick = { vname: { value: vname, where: n.where }, eid: { value: eid, where: n.where }, pid: { value: pid, where: n.where } };
  }

  // Host name <vname>.<eid>.<pid>.<domain>, lowercased; only consulted when needed.
  let host: HostParts | undefined;
  const hostParts = (purpose: string): HostParts => {
    if (host) return host;
    const h = facts.hostname;
    if (!h) {
      throw new InputError({ source: 'host name' }, '', `is empty: nothing names the ${purpose}`, SET_IN_CONFIG);
    }
    const lower = h.value.toLowerCase().replace(/\.$/, '');
    const labels = lower.split('.');
    if (labels[0] === 'localhost' || lower.endsWith('.localdomain')) {
      refuse(h, `names no slice (a testbed host name is <vname>.<eid>.<pid>.<domain>), so it cannot give the ${purpose}`, SET_IN_CONFIG);
    }
    const bad = labels.find((l) => !/^[a-z0-9_-]+$/.test(l));
    if (bad !== undefined) {
      refuse(h, `has label ${JSON.stringify(bad)} outside the host name grammar [A-Za-z0-9_-]+`, SET_IN_CONFIG);
    }
    if (nick) {
      const prefix = `${nick.vname.value}.${nick.eid.value}.${nick.pid.value}.`.toLowerCase();
      if (!lower.startsWith(prefix) || lower.length === prefix.length) {
        refuse(h, `does not start with the nickname ${JSON.stringify(nick.vname.value + '.' + nick.eid.value + '.' + nick.pid.value)} followed by a domain, so it cannot give the ${purpose}`, SET_IN_CONFIG);
      }
    } else if (labels.length < 4) {
      refuse(h, `has fewer than 4 labels: it names no slice (a testbed host name is <vname>.<eid>.<pid>.<domain>), so it cannot give the ${purpose}`, SET_IN_CONFIG);
    }
    const w = h.where;
    host = {
      vname: { value: labels[0]!, where: w },
      eid: { value: labels[1]!, where: w },
      pid: { value: labels[2]!, where: w },
      domain: { value: labels.slice(3).join('.'), where: w },
    };
    return host;
  };

  // A URN given outright (config or geni-get): it must parse and be of the expected type.
  const given = (f: Fact | undefined, type: string): { parsed: ParsedUrn; fact: Fact } | undefined => {
    if (!f) return undefined;
    const parsed = parseUrn(f.value);
    if (!parsed) refuse(f, URN_RULE);
    if (parsed.type !== type) refuse(f, `is a URN of type ${JSON.stringify(parsed.type)}, not a ${type} URN`);
    return { parsed, fact: f };
  };
  // The slice URN's top level may give the domain.
  const givenSlice = given(facts.sliceUrn, 'slice');
  const givenNode = given(facts.nodeUrn, 'node');

  // Domain: domain fact > the top level of a node URN set in the config > host name minus
  // nickname. (Not the slice URN's: a slice may belong to another authority than the node.)
  let domain: Part;
  if (facts.domain) {
    domain = { value: facts.domain.value.toLowerCase(), where: facts.domain.where };
  } else if (givenNode) {
    domain = { value: givenNode.parsed.authority[0]!.toLowerCase(), where: givenNode.fact.where };
  } else {
    domain = hostParts('testbed domain').domain;
  }
  if (!DOMAIN_RE.test(domain.value) || !TOPLEVEL_RE.test(domain.value)) {
    refuse(domain, 'is not a testbed domain (DNS labels [A-Za-z0-9-]+ separated by dots)');
  }

  // Slice: slice URN > nickname > host name; then config's project / experiment override.
  let sliceAuthority: string[];
  let project: Part;
  let slice: Part;
  if (givenSlice) {
    const { parsed, fact } = givenSlice;
    sliceAuthority = [...parsed.authority];
    // No sub-authority: no project; the login base is then the top level (SFA's rule).
    project = { value: parsed.authority.length > 1 ? parsed.authority[parsed.authority.length - 1]! : '', where: fact.where };
    slice = { value: parsed.name, where: fact.where };
  } else if (facts.project && facts.experiment) {
    sliceAuthority = [domain.value];
    project = facts.project;
    slice = facts.experiment;
  } else if (nick) {
    sliceAuthority = [domain.value, nick.pid.value];
    project = nick.pid;
    slice = nick.eid;
  } else {
    const h = hostParts('slice');
    sliceAuthority = [domain.value, h.pid.value];
    project = h.pid;
    slice = h.eid;
  }
  if (facts.project) project = facts.project;
  if (facts.experiment) slice = facts.experiment;
  if (project.value !== '') {
    if (sliceAuthority.length < 2) sliceAuthority.push(project.value);
    else sliceAuthority[sliceAuthority.length - 1] = project.value;
    if (!SUBAUTH_RE.test(project.value)) {
      refuse(project, `has project ${JSON.stringify(project.value)} outside the URN sub-authority grammar [A-Za-z0-9._-]+`);
    }
  }
  const sliceWhere = givenSlice && !facts.project && !facts.experiment ? givenSlice.fact.where : slice.where;
  const sliceUrn = buildUrnOr({ value: `${URN_PREFIX}+${sliceAuthority.join(':')}+slice+${slice.value}`, where: sliceWhere }, sliceAuthority, 'slice', slice.value);
  const sliceHrn = urnToHrn(sliceUrn);
  // The PlanetLab name is SFA's function of the HRN, exactly as a reader of /etc/slice.gid derives it.
  const slicename = hrnToPlSliceName(sliceHrn);
  if (!PL_SLICENAME_RE.test(slicename)) {
    refuse(
      { value: sliceUrn, where: sliceWhere },
      `gives the PlanetLab slice name ${JSON.stringify(slicename)} (SFA's hrn_to_pl_slicename), outside PLC's grammar ^[a-z0-9]+_[a-zA-Z0-9_]+$`,
    );
  }

  // Node: node URN > nodeid > vname (geni-get client_id > nickname > host name).
  let nodeUrn: string;
  let nodeWhere: Where;
  if (givenNode) {
    nodeUrn = givenNode.fact.value;
    nodeWhere = givenNode.fact.where;
    const name = givenNode.parsed.name;
    if (!NODE_NAME_RE.test(name)) refuse(givenNode.fact, `has node name ${JSON.stringify(name)} outside ${NODE_NAME_RE.source}`);
  } else {
    const node: Part = facts.nodeid ?? facts.clientId ?? nick?.vname ?? hostParts('node name').vname;
    if (!NODE_NAME_RE.test(node.value)) refuse(node, `has node name ${JSON.stringify(node.value)} outside ${NODE_NAME_RE.source} (URN name)`);
    nodeUrn = buildUrnOr({ value: node.value, where: node.where }, [domain.value], 'node', node.value);
    nodeWhere = node.where;
  }

  let uuid: string | undefined;
  if (facts.nodeuuid) {
    uuid = normaliseUuid(facts.nodeuuid.value);
    if (!uuid) refuse(facts.nodeuuid, 'is not a UUID (8-4-4-4-12 hexadecimal digits)');
  }

  const authority = authorityUrn([domain.value]);
  return {
    domain: domain.value,
    authority: { urn: authority, hrn: urnToHrn(authority) },
    slice: { urn: sliceUrn, hrn: sliceHrn, project: project.value, name: slice.value },
    node: { urn: nodeUrn, hrn: urnToHrn(nodeUrn), ...(uuid ? { uuid } : {}) },
    slicename,
    origins: { domain: domain.where, slice: sliceWhere, node: nodeWhere, nodeUuid: facts.nodeuuid?.where },
  };
}

function buildUrnOr(blame: Part, authority: readonly string[], type: string, name: string): string {
  try {
    return buildUrn(authority, type, name);
  } catch {
    return refuse(blame, URN_RULE);
  }
}
