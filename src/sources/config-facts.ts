// Facts the operator set in the config file ([facts] table), each with its file and line.
import type { Config } from '../config.js';
import { FACT_NAMES, type Facts } from './facts.js';

export function configFacts(config: Config): Facts {
  const facts: Facts = {};
  for (const name of FACT_NAMES) {
    const value = config.facts[name];
    if (value === undefined) continue;
    const file = config.origin?.file;
    const line = config.origin?.factLines[name];
    facts[name] = { value, where: file ? (line === undefined ? { source: file } : { source: file, line }) : { source: 'config' } };
  }
  return facts;
}
