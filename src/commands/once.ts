// sliceid once: derive the identity, issue GIDs as needed, write the three files, exit.
import { formatWhere, type Where } from '../errors.js';
import { refreshIdentity, type IdentityResult } from '../identity/index.js';
import { command, setup } from './common.js';
import { isoTime } from '../time.js';

const USAGE = 'usage: sliceid once [--root DIR] [--config FILE] [--json] [--no-geni-get]\n';

export const main = command(USAGE, { 'no-geni-get': { type: 'boolean', default: false } }, false, async ({ values }) => {
  const { paths, config, configFile } = setup(values);
  const result = await refreshIdentity(paths, config, { geniGet: !values['no-geni-get'], start: true });
  if (result.setAside) process.stderr.write(`sliceid: warning: ${result.setAside.message}; the old state is in ${result.setAside.dir}\n`);
  for (const note of result.notes) process.stderr.write(`sliceid: warning: ${note}\n`);
  if (values.json) process.stdout.write(`${JSON.stringify({ ...result, configFile: configFile ?? null })}\n`);
  else process.stdout.write(summary(result, configFile));
  return 0;
});

const from = (w: Where | undefined): string => (w ? formatWhere(w) : 'unknown');

/** The short human summary `once` prints. */
export function summary(r: IdentityResult, configFile?: string): string {
  const id = r.identity;
  const rows: Array<[string, string]> = [
    ['slice name', id.slicename],
    ['slice URN', id.slice.urn],
    ['slice HRN', id.slice.hrn],
    ['slice UUID', r.sliceUuid],
    ['node URN', id.node.urn],
    ['node HRN', id.node.hrn],
    ['node UUID', `${r.nodeUuid}${r.nodeUuidSource === 'state' ? ' (made here, kept in the state directory)' : ''}`],
    ...r.gids.authorities.map((a): [string, string] => ['signed by', `${a.hrn} (${a.urn}, ${a.issuerKind === 'self' ? 'node-local authority' : 'operator authority'})`]),
    ['domain from', from(id.origins.domain)],
    ['slice from', from(id.origins.slice)],
    ['node from', from(id.origins.node)],
    ['node UUID from', from(id.origins.nodeUuid)],
    ['config', configFile ?? 'none (defaults)'],
    ['issued', r.issued.length ? r.issued.join(', ') : 'nothing (GIDs current)'],
    ['files written', r.written.length ? r.written.join(', ') : 'none (unchanged)'],
    ['next renewal', isoTime(r.nextRenewal)],
    ...(r.setAside ? [['state', `${r.setAside.message}; the old state is in ${r.setAside.dir}`] as [string, string]] : []),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join('');
}
