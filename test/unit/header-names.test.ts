// headerName(): the per-name verdicts upstreamHeaders and method matching rely on, including
// after a client has sent more distinct names than are remembered.
import { describe, expect, it } from 'vitest';
import { headerName } from '../../src/proxy/headers.js';

const verdicts = (name: string) => {
  const h = headerName(name);
  return [h.dashed, h.dropped, h.methodOverride];
};

describe('headerName', () => {
  it('drops what the client may not send upstream, in any CGI spelling, and spots method overrides', () => {
    expect(verdicts('x-stepgate-user')).toEqual(['x-stepgate-user', true, false]);
    expect(verdicts('x_stepgate_user')).toEqual(['x-stepgate-user', true, false]);
    expect(verdicts('x_forwarded_for')).toEqual(['x-forwarded-for', true, false]);
    expect(verdicts('x-original-url')).toEqual(['x-original-url', true, false]);
    expect(verdicts('forwarded')).toEqual(['forwarded', true, false]);
    expect(verdicts('x-request-id')).toEqual(['x-request-id', true, false]);
    expect(verdicts('keep-alive')).toEqual(['keep-alive', true, false]);
    expect(verdicts('x_http_method_override')).toEqual(['x-http-method-override', false, true]);
    expect(verdicts('cookie')).toEqual(['cookie', false, false]);
    expect(verdicts('x-app-thing')).toEqual(['x-app-thing', false, false]);
  });

  it('gives the same verdicts once the remembered names are used up by junk names', () => {
    for (let i = 0; i < 1_500; i++) headerName(`x-junk-${i}`);
    expect(verdicts('x_stepgate_rule')).toEqual(['x-stepgate-rule', true, false]);
    expect(verdicts('x-method-override')).toEqual(['x-method-override', false, true]);
    expect(verdicts('x-other-app-thing')).toEqual(['x-other-app-thing', false, false]);
  });
});
