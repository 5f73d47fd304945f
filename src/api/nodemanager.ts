// The NodeManager method table (interop spec section 7) and its dispatcher. Nothing escapes the
// dispatcher: every failure becomes a fault. Answers to argument-less calls are encoded once per
// data.version(), so the hot path (GetSSHKeys) is a map lookup.
import type { Logger } from '../log.js';
import { encodeFault, encodeResponse, encodeValue } from '../xmlrpc/encode.js';
import {
  XmlRpcFault,
  argumentCount,
  callError,
  invalidMethod,
  invalidSliverArgument,
} from '../xmlrpc/fault.js';
import type { MethodCall, XmlRpcStruct, XmlRpcValue } from '../xmlrpc/types.js';
import type { NodeManagerData } from './types.js';

export interface MethodInfo {
  readonly name: string;
  /** Exact number of arguments. */
  readonly args: number;
  readonly doc: string;
}

interface Method extends MethodInfo {
  /** Answer depends only on data.version() (and takes no arguments): memoize the encoded reply. */
  readonly memo: boolean;
  run(params: XmlRpcValue[]): XmlRpcValue;
}

export interface NodeManagerApi {
  /** Every method name, sorted as NodeManager sorts them (by code unit). */
  readonly methods: readonly string[];
  /** Answer a decoded call with the bytes of a methodResponse (result or fault). Never throws. */
  respond(call: MethodCall): Buffer;
  /**
   * The same answer as pieces to write one after the other (what the server sends). A
   * system.multicall's members that are memoized answers are the memo's own bytes, shared by
   * reference: 256 GetSSHKeys members cost 256 references, not 256 copies. Never throws.
   */
  respondChunks(call: MethodCall): Buffer[];
  /** Answer a call as a value; throws XmlRpcFault (any other error is wrapped as 104). */
  call(methodName: string, params: XmlRpcValue[]): XmlRpcValue;
  /** Compute the memoized answers of the current data now (after a refresh) rather than at the first call. */
  warm(): void;
}

export interface NodeManagerOptions {
  /** Most calls one system.multicall may carry. */
  readonly multicallMax?: number;
  /** Most reply bytes one request may be answered with (a multicall's members share it). */
  readonly replyBudget?: number;
  readonly logger?: Logger;
}

/** The sliver-management methods NodeManager offers and this node does not, with their arity. */
export const SLIVER_METHODS: Readonly<Record<string, number>> = {
  Ticket: 1,
  AdminTicket: 1,
  Create: 1,
  Destroy: 1,
  Start: 1,
  Stop: 1,
  ReCreate: 1,
  GetRSpec: 1,
  GetEffectiveRSpec: 1,
  GetLoans: 1,
  SetLoans: 2,
};

const SLIVER_DOCS: Readonly<Record<string, string>> = {
  Ticket: 'Deliver a slice ticket to the Node Manager',
  AdminTicket: 'Deliver an administrative slice ticket to the Node Manager',
  Create: 'Create a sliver',
  Destroy: 'Destroy a sliver',
  Start: 'Start a sliver',
  Stop: 'Stop a sliver',
  ReCreate: 'Stop and re-create a sliver',
  GetRSpec: "Return a sliver's resource specification",
  GetEffectiveRSpec: "Return a sliver's effective resource specification, loans included",
  GetLoans: "Return the resources a sliver lends to other slices",
  SetLoans: 'Set the resources a sliver lends to other slices',
};

/** Why the sliver-management methods answer fault 104 here (see notOffered). */
const NOT_OFFERED =
  'is not offered on this node: its slivers are managed by the testbed (Emulab/ProtoGENI), not by a Node Manager';

/** Assign a member without ever touching the prototype (a member may be called "__proto__"). */
function member(out: XmlRpcStruct, name: string, value: XmlRpcValue): void {
  Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
}

function isStruct(v: XmlRpcValue | undefined): v is XmlRpcStruct {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Uint8Array);
}

/** A copy without null/undefined members (replies never carry nil), recursively for structs. */
function withoutNil(record: Readonly<Record<string, unknown>>): XmlRpcStruct {
  const out: XmlRpcStruct = {};
  for (const [k, v] of Object.entries(record)) {
    if (v === null || v === undefined) continue;
    member(out, k, isStruct(v as XmlRpcValue) ? withoutNil(v as XmlRpcStruct) : (v as XmlRpcValue));
  }
  return out;
}

/** Default reply budget of one request: 16 MiB (a GetSSHKeys reply is ~100 KB at most in practice). */
export const DEFAULT_REPLY_BUDGET = 16 * 1024 * 1024;

const RESPONSE_HEAD = Buffer.from("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n");
const RESPONSE_TAIL = Buffer.from('</param>\n</params>\n</methodResponse>\n');
const ARRAY_OPEN = Buffer.from('<value><array><data>\n');
const ARRAY_CLOSE = Buffer.from('</data></array></value>\n');

export function createNodeManager(data: NodeManagerData, opts: NodeManagerOptions = {}): NodeManagerApi {
  const multicallMax = opts.multicallMax ?? 256;
  const replyBudget = opts.replyBudget ?? DEFAULT_REPLY_BUDGET;
  const table = new Map<string, Method>();
  const add = (m: Method): void => void table.set(m.name, m);

  add({
    name: 'GetSSHKeys',
    args: 0,
    memo: true,
    doc: 'Return a dictionary mapping slice names to SSH keys (one string, keys separated by newlines)',
    run: () => {
      // Every slice the node knows is listed, with "" when it has no listable keys (as
      // NodeManager answers for a sliver without keys).
      const out: XmlRpcStruct = {};
      const name = data.slicename();
      if (name !== undefined) member(out, name, data.sliceKeys().join('\n'));
      for (const o of data.others?.() ?? []) if (!Object.hasOwn(out, o.name)) member(out, o.name, o.keys.join('\n'));
      return out;
    },
  });
  add({
    name: 'GetXIDs',
    args: 0,
    memo: true,
    doc: 'Return a dictionary mapping slice names to XIDs (unix user ids)',
    run: () => {
      const out: XmlRpcStruct = {};
      const name = data.slicename();
      const uid = name === undefined ? undefined : data.sliceUid();
      if (name !== undefined && uid !== undefined) member(out, name, uid);
      for (const o of data.others?.() ?? []) if (o.uid !== undefined && !Object.hasOwn(out, o.name)) member(out, o.name, o.uid);
      return out;
    },
  });
  add({
    name: 'GetRecord',
    args: 0,
    // Not memoized: its timestamp (the last refresh) moves even when the data does not.
    memo: false,
    doc: "Return the caller's sliver record",
    run: () => {
      const rec = data.record();
      // NodeManager answers 102 when the caller has no sliver record; so does this node when it
      // is on no slice.
      if (!rec) throw invalidSliverArgument();
      // NodeManager's records always carry `delegations`; this node delegates nothing.
      const out = withoutNil(rec);
      if (!Array.isArray(out['delegations'])) member(out, 'delegations', []);
      return out;
    },
  });
  add({
    name: 'Help',
    args: 0,
    memo: true,
    doc: 'Get a list of functions currently supported by the Node Manager API',
    run: () => names().map((n) => `**** ${n}\n${table.get(n)!.doc}\n`).join(''),
  });
  for (const [name, args] of Object.entries(SLIVER_METHODS)) {
    add({
      name,
      args,
      memo: false,
      doc: `${SLIVER_DOCS[name]}. Not offered on this node: slivers are managed by the testbed.`,
      run: (params) => {
        // NodeManager's target check: the first argument must name a sliver of this node
        // (Ticket's argument is a ticket, not a sliver: it has no target).
        if (name !== 'Ticket' && (typeof params[0] !== 'string' || params[0] !== data.slicename())) throw invalidSliverArgument();
        throw callError(`${name} ${NOT_OFFERED}`);
      },
    });
  }
  add({
    name: 'system.listMethods',
    args: 0,
    memo: true,
    doc: 'Return the names of the methods this server offers',
    run: () => [...names()],
  });
  add({
    name: 'system.methodHelp',
    args: 1,
    memo: false,
    doc: 'Return the documentation of one method (empty when there is no such method)',
    run: ([name]) => {
      if (typeof name !== 'string') throw callError('system.methodHelp expects a method name (string)');
      return table.get(name)?.doc ?? '';
    },
  });
  add({
    name: 'system.multicall',
    args: 1,
    memo: false,
    doc: 'Run several calls in one request: an array of {methodName, params} structs; each result comes back in a one-element array, or as a {faultCode, faultString} struct',
    run: ([calls]) => {
      if (!Array.isArray(calls)) throw callError('system.multicall expects an array of {methodName, params} structs');
      if (calls.length > multicallMax) throw callError(`system.multicall takes at most ${multicallMax} calls, got ${calls.length}`);
      return calls.map((c, i): XmlRpcValue => {
        try {
          const methodName = isStruct(c) ? c['methodName'] : undefined;
          const params = isStruct(c) ? c['params'] : undefined;
          if (typeof methodName !== 'string' || !Array.isArray(params)) {
            throw callError(`system.multicall call ${i} needs a methodName (string) and params (array)`);
          }
          if (methodName === 'system.multicall') throw callError('system.multicall cannot be nested');
          return [call(methodName, params)];
        } catch (err) {
          const f = asFault(err);
          return { faultCode: f.faultCode, faultString: f.faultString };
        }
      });
    },
  });

  let sorted: string[] | undefined;
  function names(): string[] {
    return (sorted ??= [...table.keys()].sort());
  }

  // A failing data layer fails every call alike: log each distinct failure once, not per request.
  let lastLogged: string | undefined;
  function asFault(err: unknown): XmlRpcFault {
    if (err instanceof XmlRpcFault) return err;
    const message = err instanceof Error ? err.message : String(err);
    if (message !== lastLogged) {
      lastLogged = message;
      opts.logger?.warn({ err: err instanceof Error ? err.stack : message }, 'API method failed (logged once per distinct error)');
    }
    return callError(message);
  }

  function lookup(methodName: string, params: XmlRpcValue[]): Method {
    const m = table.get(methodName);
    if (!m) throw invalidMethod(methodName, names());
    if (params.length !== m.args) throw argumentCount(params.length, m.args);
    return m;
  }

  function call(methodName: string, params: XmlRpcValue[]): XmlRpcValue {
    try {
      return lookup(methodName, params).run(params);
    } catch (err) {
      throw asFault(err);
    }
  }

  /**
   * A memoized answer: the whole response, and (when it is a result) its `<value>` as a view of
   * the same bytes, for multicall members; or the fault it is.
   */
  interface Memo {
    readonly version: number;
    readonly body: Buffer;
    readonly value?: Buffer;
    readonly fault?: XmlRpcFault;
  }
  const memo = new Map<string, Memo>();

  function memoized(m: Method, params: XmlRpcValue[]): Memo {
    const version = data.version();
    const hit = memo.get(m.name);
    if (hit && hit.version === version) return hit;
    let entry: Memo;
    try {
      const body = encodeResponse(m.run(params));
      entry = { version, body, value: body.subarray(RESPONSE_HEAD.length, body.length - RESPONSE_TAIL.length) };
    } catch (err) {
      // A fault of our own (e.g. GetRecord off a slice) is as stable as an answer; a failure
      // of the data layer is not, and is retried on the next call.
      if (!(err instanceof XmlRpcFault)) throw err;
      entry = { version, body: encodeFault(err), fault: err };
    }
    memo.set(m.name, entry);
    return entry;
  }

  const faultMember = (f: XmlRpcFault): Buffer => Buffer.from(encodeValue({ faultCode: f.faultCode, faultString: f.faultString }), 'utf8');

  /**
   * system.multicall as pieces. The members share the request's reply budget: a member whose
   * answer would take the reply past it is not answered but gets a fault in its slot (as any
   * failing member does), so the members before it keep their results and the reply stays
   * within the budget plus the size of the faults.
   */
  function multicallChunks(calls: XmlRpcValue): Buffer[] {
    if (!Array.isArray(calls)) throw callError('system.multicall expects an array of {methodName, params} structs');
    if (calls.length > multicallMax) throw callError(`system.multicall takes at most ${multicallMax} calls, got ${calls.length}`);
    const out: Buffer[] = [RESPONSE_HEAD, ARRAY_OPEN];
    let used = RESPONSE_HEAD.length + RESPONSE_TAIL.length + 2 * ARRAY_OPEN.length;
    calls.forEach((c, i) => {
      try {
        const methodName = isStruct(c) ? c['methodName'] : undefined;
        const params = isStruct(c) ? c['params'] : undefined;
        if (typeof methodName !== 'string' || !Array.isArray(params)) {
          throw callError(`system.multicall call ${i} needs a methodName (string) and params (array)`);
        }
        if (methodName === 'system.multicall') throw callError('system.multicall cannot be nested');
        let value: Buffer;
        const m = lookup(methodName, params);
        if (m.memo) {
          const entry = memoized(m, params);
          if (entry.fault) throw entry.fault;
          value = entry.value!;
        } else {
          value = Buffer.from(encodeValue(m.run(params)), 'utf8');
        }
        const size = value.length + ARRAY_OPEN.length + ARRAY_CLOSE.length;
        if (used + size > replyBudget) {
          throw callError(`system.multicall call ${i} (${methodName}) not answered: the reply would exceed ${replyBudget} bytes`);
        }
        used += size;
        out.push(ARRAY_OPEN, value, ARRAY_CLOSE);
      } catch (err) {
        const f = faultMember(asFault(err));
        used += f.length;
        out.push(f);
      }
    });
    out.push(ARRAY_CLOSE, RESPONSE_TAIL);
    return out;
  }

  function respondChunks(req: MethodCall): Buffer[] {
    try {
      const m = lookup(req.methodName, req.params);
      if (m.name === 'system.multicall') return multicallChunks(req.params[0]!);
      if (!m.memo) return [encodeResponse(m.run(req.params))];
      return [memoized(m, req.params).body];
    } catch (err) {
      return [encodeFault(asFault(err))];
    }
  }

  function respond(req: MethodCall): Buffer {
    const chunks = respondChunks(req);
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  function warm(): void {
    for (const m of table.values()) if (m.memo && m.args === 0) respond({ methodName: m.name, params: [] });
  }

  return { methods: names(), respond, respondChunks, call, warm };
}
