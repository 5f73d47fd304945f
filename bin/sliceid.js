#!/usr/bin/env node
// The production bundle (npm run bundle: dist/bundle/) when it is there, else the compiled tree.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/bundle/cli.js', import.meta.url);
const { run } = await import(existsSync(bundle) ? bundle.href : '../dist/src/cli.js');
run();
