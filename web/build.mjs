// Builds the browser UI into web/dist, deterministically: the same sources give
// byte-identical files (CI rebuilds and diffs the committed dist).
//
//   dist/index.html               from index.html, naming the hashed assets
//   dist/assets/app-HASH.js       src/app.js and everything it imports, minified
//   dist/assets/app-HASH.css      src/app.css (with xterm's stylesheet), minified
//   dist/assets/icon-HASH.svg     the favicon
//
// Paths are relative to the page, so the UI also works under a reverse-proxy prefix.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const assets = join(dist, 'assets');

async function bundle() {
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { app: 'src/app.js' },
    bundle: true,
    format: 'esm',
    target: ['es2020', 'chrome90', 'firefox90', 'safari15'],
    minify: true,
    sourcemap: false,
    legalComments: 'eof',
    charset: 'utf8',
    outdir: assets,
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    metafile: true,
    write: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => join(root, file));
  const find = (extension) => {
    const matches = outputs.filter((file) => file.endsWith(extension));
    if (matches.length !== 1) throw new Error(`expected one ${extension} output, got ${matches.join(', ')}`);
    return relative(dist, matches[0]);
  };
  return { js: find('.js'), css: find('.css') };
}

/** Copies a file into dist/assets under a content-hashed name. */
async function hashed(source, name, extension) {
  const body = await readFile(join(root, source));
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 10);
  const file = join(assets, `${name}-${hash}.${extension}`);
  await writeFile(file, body);
  return relative(dist, file);
}

async function main() {
  await rm(dist, { recursive: true, force: true });
  await mkdir(assets, { recursive: true });
  const { js, css } = await bundle();
  const icon = await hashed('src/icon.svg', 'icon', 'svg');
  const template = await readFile(join(root, 'index.html'), 'utf8');
  const replacements = { '{{app.js}}': js, '{{app.css}}': css, '{{icon.svg}}': icon };
  let html = template;
  for (const [placeholder, path] of Object.entries(replacements)) {
    if (!html.includes(placeholder)) throw new Error(`index.html lacks ${placeholder}`);
    html = html.replaceAll(placeholder, path.split('\\').join('/'));
  }
  await writeFile(join(dist, 'index.html'), html);
  for (const file of ['index.html', js, css, icon]) console.log(`dist/${file.split('\\').join('/')}`);
}

await main();
