import test from 'ava';
import fs from 'node:fs';
import { nodePaths } from '../../src/paths.js';
import { writeIdentityFiles } from '../../src/writers/identity-files.js';
import { tempDir } from '../helpers/fixtures.js';

test('writes the three files 0644, creates <root>/etc, slicename without a trailing newline', (t) => {
  const paths = nodePaths(tempDir());
  const written = writeIdentityFiles(paths, { slicename: 'myproj_myexp\n', sliceGid: 'S\n', nodeGid: 'N\n' });
  t.deepEqual(written, [paths.sliceGid, paths.nodeGid, paths.slicename]);
  t.is(fs.readFileSync(paths.slicename, 'utf8'), 'myproj_myexp');
  t.is(fs.readFileSync(paths.sliceGid, 'utf8'), 'S\n');
  t.is(fs.readFileSync(paths.nodeGid, 'utf8'), 'N\n');
  for (const f of written) t.is(fs.statSync(f).mode & 0o777, 0o644);
});

test('unchanged content is not rewritten; a change rewrites only that file', (t) => {
  const paths = nodePaths(tempDir());
  writeIdentityFiles(paths, { slicename: 'a_b', sliceGid: 'S', nodeGid: 'N' });
  const mtime = fs.statSync(paths.nodeGid).mtimeMs;
  t.deepEqual(writeIdentityFiles(paths, { slicename: 'a_b', sliceGid: 'S', nodeGid: 'N' }), []);
  t.deepEqual(writeIdentityFiles(paths, { slicename: 'a_c', sliceGid: 'S2', nodeGid: 'N' }), [paths.sliceGid, paths.slicename]);
  t.is(fs.statSync(paths.nodeGid).mtimeMs, mtime);
  t.deepEqual(fs.readdirSync(`${paths.root}/etc`).sort(), ['node.gid', 'slice.gid', 'slicename']);
});
