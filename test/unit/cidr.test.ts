// Address sets decide whom the gateway believes (trust_proxy, identity.header.trusted_proxies).
// Verdicts are remembered per address string: asking twice, or past the number remembered, must
// give exactly what node:net's BlockList says.
import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import { addressSet } from '../../src/net/cidr.js';

describe('addressSet', () => {
  const set = addressSet(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32']);

  it.each([
    ['10.1.2.3', true],
    ['::ffff:10.1.2.3', true],
    ['11.0.0.1', false],
    ['192.168.1.7', true],
    ['192.168.1.8', false],
    ['2001:db8::1', true],
    ['2001:db9::1', false],
    ['10.1.2.3.4', false],
    ['not an address', false],
    ['', false],
  ])('%s → %s, the same when asked again', (address, expected) => {
    expect(set.has(address)).toBe(expected);
    expect(set.has(address)).toBe(expected);
  });

  it('an empty set trusts nobody', () => {
    const none = addressSet([]);
    expect(none.empty).toBe(true);
    expect(none.has('127.0.0.1')).toBe(false);
    expect(none.has(undefined)).toBe(false);
  });

  it('agrees with BlockList for more addresses than it remembers, asked in two passes', () => {
    const reference = new BlockList();
    reference.addSubnet('10.0.0.0', 8, 'ipv4');
    reference.addAddress('192.168.1.7', 'ipv4');
    // 10.x and 11.x addresses alternate: the verdicts differ, so a mixed-up memory would show.
    const addresses = Array.from({ length: 10_000 }, (_, i) => `${10 + (i % 2)}.${(i >> 8) & 255}.${i & 255}.1`);
    for (let pass = 0; pass < 2; pass++) {
      for (const a of addresses) expect(set.has(a)).toBe(reference.check(a, 'ipv4'));
    }
  });

  it('judges long strings (a client-chosen X-Forwarded-For entry) without remembering them', () => {
    const long = `10.0.0.1${' '.repeat(100)}`;
    expect(set.has(long)).toBe(false);
    expect(set.has(long)).toBe(false);
    expect(set.has('10.0.0.1')).toBe(true);
  });
});
