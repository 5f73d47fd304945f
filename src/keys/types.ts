// Slice users and their public keys, as parsed from one key source.
import type { Where } from '../errors.js';

export interface SshKey {
  /** Key type as written, e.g. ssh-ed25519. */
  readonly type: string;
  /** Base64 of the wire-format key blob, canonical (as written, validated). */
  readonly blob: string;
  /** Comment, may be empty; may contain spaces and quotes. */
  readonly comment: string;
  /** "type blob comment" (or "type blob" with no comment): what GetSSHKeys serves. */
  readonly text: string;
  /** OpenSSH-style fingerprint, "SHA256:<base64 without padding>". */
  readonly fingerprint: string;
}

export interface SliceUser {
  readonly login: string;
  readonly uid?: number;
  readonly gid?: number;
  readonly name?: string;
  readonly email?: string;
  readonly homedir?: string;
  readonly urn?: string;
  readonly keys: readonly SshKey[];
}

/** A line (or record) that was reported and skipped. */
export interface Problem {
  readonly where: Where;
  readonly message: string;
}

/** Identifies one key source in the cache. */
export type SourceId = string; // "tmcc:accounts", "authorized_keys:<login>", "geni-get:geni_user"

export type SourceStatus = 'ok' | 'partial' | 'missing' | 'invalid';

export interface SourceResult {
  readonly id: SourceId;
  /** File path or command, for messages. */
  readonly origin: string;
  /**
   * ok: read completely, every record either used or reported;
   * partial: usable lines exist but the source looks cut or garbled (e.g. last line unterminated);
   * missing: not there (or empty), nothing read;
   * invalid: not there in any usable form.
   */
  readonly status: SourceStatus;
  /**
   * Where this source's keys go in the served list: lower first (tmcc accounts 0, authorized_keys
   * 1 + the user's position in accounts, geni-get last). Absent: derived from the id.
   */
  readonly priority?: number;
  readonly users: readonly SliceUser[];
  readonly problems: readonly Problem[];
  /** Why the status is not "ok" (absent, empty, unreadable, cut short ...), for status and logs. */
  readonly reason?: string;
  /**
   * Set on a missing user-owned source (authorized_keys) that its owner deleted or emptied, its home
   * directory present: the user's own removal, with the user it was for. The refresh applies it as
   * "no keys" through the shrink guard, so that only a removal that lasts takes the keys away.
   */
  readonly removedByOwner?: SliceUser;
}
