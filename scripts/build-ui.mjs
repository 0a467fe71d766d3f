// Bundles the hosted pages' front-end (ui/*.ts entry points, ui/*.css) into dist/ui/ with esbuild.
// No CDN, no framework: @simplewebauthn/browser is bundled in. Helpers live in ui/lib/ (not entry
// points). Files are written to a temporary name and renamed, so a gateway serving dist/ui (or a
// test building it in parallel) never reads a half-written bundle.
import { build } from 'esbuild';
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const uiDir = join(root, 'ui');
const outDir = join(root, 'dist', 'ui');

const entryPoints = readdirSync(uiDir)
  .filter((f) => /^[a-z0-9-]+\.(ts|css)$/.test(f))
  .sort()
  .map((f) => join(uiDir, f));

const result = await build({
  entryPoints,
  outdir: outDir,
  bundle: true,
  write: false,
  format: 'iife',
  platform: 'browser',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  minify: true,
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
});

mkdirSync(outDir, { recursive: true });
for (const file of result.outputFiles) {
  const tmp = `${file.path}.${process.pid}.tmp`;
  writeFileSync(tmp, file.contents);
  renameSync(tmp, file.path);
}
if (!process.argv.includes('--quiet')) {
  process.stdout.write(`build-ui: ${result.outputFiles.map((f) => f.path.slice(root.length + 1)).join(', ')}\n`);
}
