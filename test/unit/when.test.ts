// Table tests of the `when` condition evaluator (SPEC §3): every occurrence counts, names as PHP
// reads them, values case-insensitive with `*` prefixes, JSON Pointers, batches, fail closed.
import { describe, expect, it } from 'vitest';
import { parseRoutesConfig } from '../../src/config/load.js';
import { bufferedBody, type InspectedBody } from '../../src/proxy/body.js';
import { ambiguousJson, conditionMatch, ConditionInput } from '../../src/rules/when.js';

const routes = parseRoutesConfig(
  `rules:
  - name: wiki-admin
    match: POST /api.php
    when:
      param:
        action: [delete, userrights]
        title: ["Special:Block*"]
  - name: rpc
    match: POST /rpc
    when:
      json:
        /method: [account.delete, billing.update]
        /params/0/kind: [admin]
        /a~1b: [x]
`,
  'routes.yaml',
);
const [param, json] = [routes.rules[0]!.when!, routes.rules[1]!.when!];

function input(query: string, body: string | InspectedBody | null, type?: string) {
  const b = typeof body === 'string' ? bufferedBody(Buffer.from(body)) : body;
  return new ConditionInput(query, type, () => Promise.resolve(b));
}
const form = 'application/x-www-form-urlencoded';
const failed = (failure: InspectedBody['failure']): InspectedBody => ({ ...bufferedBody(Buffer.from('x')), failure });

describe('param conditions', () => {
  it.each([
    ['?action=delete', null, undefined, true],
    ['?action=edit', null, undefined, false],
    ['?action=edit&action=delete', null, undefined, true],
    ['?action=DELETE', null, undefined, true],
    ['?Action=delete', null, undefined, true],
    ['?%61ction=delete', null, undefined, true],
    ['?action[]=delete', null, undefined, true],
    ['?%20action=delete', null, undefined, true],
    ['?action=del%65te', null, undefined, true],
    ['?action=delete+', null, undefined, false],
    ['?title=special:blockip', null, undefined, true],
    ['?title=Special:Bloc', null, undefined, false],
    ['?action=edit', 'action=delete', form, true],
    ['', 'title=X&action=userrights', `${form}; charset=UTF-8`, true],
    ['', 'action=edit', form, false],
    ['', '', form, false],
    ['', '{"action":"delete"}', 'application/json', true], // not a form: cannot be inspected as one
    ['', 'action=edit', 'text/plain', true],
    ['', failed('too-large'), form, true],
    ['', failed('encoded'), form, true],
    ['', failed('timeout'), form, true],
  ] as const)('%s + %s (%s) → %s', async (query, body, type, expected) => {
    expect((await conditionMatch(param, input(query, body, type))) !== null).toBe(expected);
  });

  it('reads multipart fields, with a file part before the field, and ignores file contents', async () => {
    const boundary = 'XyZ';
    const part = (name: string, value: string, file?: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${file ? `; filename="${file}"` : ''}\r\n\r\n${value}\r\n`;
    const type = `multipart/form-data; boundary=${boundary}`;
    const withField = part('upload', 'action=delete', 'a.txt') + part('action', 'delete') + `--${boundary}--\r\n`;
    expect(await conditionMatch(param, input('', withField, type))).toBe('body parameter action=delete');
    const onlyFile = part('action', 'delete', 'action.txt') + `--${boundary}--\r\n`;
    expect(await conditionMatch(param, input('', onlyFile, type))).toBeNull();
  });
});

describe('json conditions', () => {
  const j = 'application/json';
  it.each([
    ['{"method":"account.delete"}', j, true],
    ['{"method":"Account.Delete"}', j, true],
    ['{"method":"account.get"}', j, false],
    ['[{"method":"account.get"},{"method":"billing.update"}]', j, true],
    ['{"params":[{"kind":"admin"}]}', j, true],
    ['{"params":{"0":{"kind":"admin"}}}', j, true],
    ['{"a/b":"x"}', j, true],
    ['{"method":["x","account.delete"]}', j, true],
    ['{"method":"account.get","method":"account.delete"}', j, true],
    ['{"method":"account.delete"}', 'application/vnd.api+json', true],
    ['{"method":"account.get"}', 'text/plain', true],
    ['{"method":', j, true],
    ['', j, false],
  ] as const)('%s (%s) → %s', async (body, type, expected) => {
    expect((await conditionMatch(json, input('', body, type))) !== null).toBe(expected);
  });

  it('treats nesting deeper than 64 as ambiguous', () => {
    expect(ambiguousJson('['.repeat(64) + ']'.repeat(64))).toBeNull();
    expect(ambiguousJson('['.repeat(65) + ']'.repeat(65))).toMatch(/deeper/);
    expect(ambiguousJson('{"a":{"a":1},"b":"\\"a\\":"}')).toBeNull();
    expect(ambiguousJson('{"a\\u0062":1,"ab":2}')).toMatch(/duplicate/);
  });
});

describe('when in routes.yaml', () => {
  it('reports bad conditions with positions', () => {
    const bad = `rules:
  - name: x
    match: POST /x
    when:
      param: { action: [] }
      json: { method: [a] }
      header: { x: [y] }
`;
    expect(() => parseRoutesConfig(bad, 'routes.yaml')).toThrowError(/routes\.yaml:5:\d+: .*at least one value[\s\S]*routes\.yaml:6:\d+: .*JSON Pointer[\s\S]*routes\.yaml:7:\d+: .*header/);
  });
});
