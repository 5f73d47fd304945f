// sliceid show-gid FILE: decode a GID chain and say whether it verifies (for image maintainers).
import fs from 'node:fs';
import { parseGidChain, verifyGidChain, type GidInfo } from '../identity/gid.js';
import { UsageError, command } from './common.js';
import { isoTime } from '../time.js';

const USAGE = 'usage: sliceid show-gid FILE [--json]\n';

export const main = command(USAGE, {}, true, ({ values, positionals }) => {
  if (positionals.length !== 1) throw new UsageError(positionals.length ? 'one FILE only' : 'FILE is missing');
  const file = positionals[0]!;
  const text = fs.readFileSync(file, 'utf8');
  const chain = parseGidChain(text);
  const check = verifyGidChain(chain);
  if (values.json) {
    const certificates = chain.map(({ pem: _pem, ...rest }) => rest);
    process.stdout.write(
      `${JSON.stringify({ file, certificates, verified: check.ok, selfRooted: check.selfRooted, problems: check.problems, warnings: check.warnings })}\n`,
    );
  } else {
    process.stdout.write(render(file, chain, check));
  }
  return check.ok ? 0 : 1;
});

function render(file: string, chain: readonly GidInfo[], check: ReturnType<typeof verifyGidChain>): string {
  const out: string[] = [`${file}: ${chain.length} certificate${chain.length === 1 ? '' : 's'}`];
  chain.forEach((g, i) => {
    out.push(
      '',
      `[${i + 1}] ${g.type ?? 'unknown type'}${g.ca ? ' (CA)' : ''}`,
      `  URN        ${g.urn ?? '(none)'}`,
      `  HRN        ${g.hrn ?? '(none)'}`,
      `  UUID       ${g.uuid ?? '(none)'}`,
      ...(g.email ? [`  email      ${g.email}`] : []),
      `  subject    CN=${g.cn ?? '(none)'}`,
      `  issuer     CN=${g.issuerCn ?? '(none)'}`,
      `  serial     ${g.serial}`,
      `  valid      ${isoTime(g.notBefore)} to ${isoTime(g.notAfter)}`,
      `  CA         ${g.ca ? 'TRUE' : 'FALSE'}`,
      `  extensions ${g.extensions.map((e) => (e.endsWith('!') ? `${e.slice(0, -1)} (critical)` : e)).join(', ')}`,
    );
  });
  out.push('');
  if (check.warnings.length) out.push('not quite a GID:', ...check.warnings.map((w) => `  - ${w}`));
  if (check.ok) {
    out.push(`chain verifies${check.selfRooted ? ' (ends at a self-signed authority)' : ' (its last issuer is not in the file)'}`);
  } else {
    out.push('chain does NOT verify:', ...check.problems.map((p) => `  - ${p}`));
  }
  return `${out.join('\n')}\n`;
}
