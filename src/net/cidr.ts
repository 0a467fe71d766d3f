// CIDR sets for trust_proxy and identity.header.trusted_proxies, on node:net's BlockList.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export interface AddressSet {
  has(address: string | undefined): boolean;
  readonly empty: boolean;
}

/** Entries are validated by the config schema: `a.b.c.d[/n]` or `v6[/n]`. */
export function addressSet(cidrs: readonly string[]): AddressSet {
  const list = new BlockList();
  for (const entry of cidrs) {
    const [addr = '', bits] = entry.split('/');
    const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
    list.addSubnet(addr, bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits), type);
  }
  const empty = cidrs.length === 0;
  return {
    empty,
    has(address) {
      if (empty || !address) return false;
      const plain = unmapIPv4(address);
      if (isIPv4(plain)) return list.check(plain, 'ipv4');
      return isIPv6(plain) && list.check(plain, 'ipv6');
    },
  };
}

/** `::ffff:127.0.0.1` (a dual-stack socket's view of an IPv4 peer) → `127.0.0.1`. */
export function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}
