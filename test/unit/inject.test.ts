// The HTML injection of the drop-in client (SPEC §5): where the tag goes, what is left alone,
// and how a Content-Security-Policy is extended without weakening it.
import { describe, expect, it } from 'vitest';
import { allowScript, ScriptInserter } from '../../src/proxy/inject.js';

const TAG = '<script src="/__stepup/client.js" defer></script>';

async function run(chunks: string[], requireDocumentStart: boolean): Promise<{ out: string; inserted: boolean | null }> {
  const inserter = new ScriptInserter(Buffer.from(TAG), requireDocumentStart);
  let inserted: boolean | null = null;
  inserter.once('decision', (v: boolean) => (inserted = v));
  const out: Buffer[] = [];
  inserter.on('data', (d: Buffer) => out.push(d));
  const done = new Promise((r) => inserter.on('end', r));
  for (const c of chunks) inserter.write(Buffer.from(c));
  inserter.end();
  await done;
  return { out: Buffer.concat(out).toString(), inserted };
}

describe('ScriptInserter', () => {
  it.each([
    [['<!doctype html><html><head><title>x</title></head><body>hi</body></html>'], `<!doctype html><html><head>${TAG}<title>x</title></head><body>hi</body></html>`],
    [['<!DOCTYPE html>\n<html lang="en">\n<he', 'ad data-x="1">', '<meta charset=utf-8></head>'], `<!DOCTYPE html>\n<html lang="en">\n<head data-x="1">${TAG}<meta charset=utf-8></head>`],
    [['<html><body>no head</body></html>'], `<html>${TAG}<body>no head</body></html>`],
    [['\uFEFF  <!doctype html><head></head>'], `\uFEFF  <!doctype html><head>${TAG}</head>`],
  ])('inserts after <head> in %j', async (chunks, expected) => {
    expect((await run(chunks, true)).out).toBe(expected);
  });

  it.each([
    ['<div class="fragment">loaded by a script</div><head>'],
    ['{"not":"html"}'],
    [''],
  ])('leaves a non-document untouched without Sec-Fetch headers: %j', async (body) => {
    const r = await run([body], true);
    expect(r).toEqual({ out: body, inserted: false });
  });

  it('inserts into a navigation answer whatever its first bytes are', async () => {
    expect((await run(['<head></head>'], false)).out).toBe(`<head>${TAG}</head>`);
  });

  it('gives up after 64 KiB without a head and passes the page unchanged', async () => {
    const page = '<!doctype html>' + 'x'.repeat(70 * 1024);
    expect(await run([page.slice(0, 40_000), page.slice(40_000)], true)).toEqual({ out: page, inserted: false });
  });
});

describe('allowScript (CSP)', () => {
  const url = 'http://localhost:8080/__stepup/client.js';
  it.each([
    ["default-src 'self'", "default-src 'self'", false],
    ["script-src 'self' https://cdn.example", "script-src 'self' https://cdn.example", false],
    ["script-src https://cdn.example; object-src 'none'", `script-src https://cdn.example ${url}; object-src 'none'`, false],
    ["script-src 'unsafe-inline' https://cdn.example", `script-src 'unsafe-inline' https://cdn.example ${url}`, false],
    ["default-src https://cdn.example; img-src *", `default-src https://cdn.example; img-src *; script-src https://cdn.example ${url}`, false],
    ["script-src 'none'", `script-src ${url}`, false],
    ["img-src 'self'", "img-src 'self'", false],
  ])('%s → %s', (policy, expected, nonce) => {
    const r = allowScript(policy, url);
    expect(r.header).toBe(expected);
    expect(r.nonce !== null).toBe(nonce);
  });

  it("uses a nonce with 'strict-dynamic' (host sources are ignored there)", () => {
    const r = allowScript("script-src 'nonce-abc' 'strict-dynamic'; base-uri 'none'", url);
    expect(r.nonce).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(r.header).toBe(`script-src 'nonce-abc' 'strict-dynamic' 'nonce-${r.nonce}'; base-uri 'none'`);
  });

  const frameUrl = 'http://localhost:8080/__stepup/';
  it.each([
    // The modal's iframe: frame-src, else a new frame-src copied from child-src or default-src.
    ["default-src 'none'", `default-src 'none'; script-src ${url}; frame-src ${frameUrl}`],
    ["default-src 'self'", "default-src 'self'"],
    ["script-src 'self'; frame-src 'none'", `script-src 'self'; frame-src ${frameUrl}`],
    ["script-src 'self'; frame-src https://video.example", `script-src 'self'; frame-src https://video.example ${frameUrl}`],
    ["script-src 'self'; child-src https://w.example; default-src 'none'", `script-src 'self'; child-src https://w.example; default-src 'none'; frame-src https://w.example ${frameUrl}`],
    ["script-src 'self'; frame-src *", "script-src 'self'; frame-src *"],
    ["script-src 'self'; img-src 'none'", "script-src 'self'; img-src 'none'"],
  ])('with the modal frame: %s → %s', (policy, expected) => {
    expect(allowScript(policy, url, { frameUrl }).header).toBe(expected);
  });

  it('reuses a nonce it is given (the report-only policy gets the same one)', () => {
    const r = allowScript("script-src 'strict-dynamic' 'nonce-x'", url, { nonce: 'given' });
    expect(r).toEqual({ header: "script-src 'strict-dynamic' 'nonce-x' 'nonce-given'", nonce: 'given' });
  });

  it('extends every policy of a multi-policy header', () => {
    expect(allowScript(["script-src https://a", "default-src 'self'"], url).header).toBe(`script-src https://a ${url}, default-src 'self'`);
  });
});
