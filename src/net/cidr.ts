// CIDR sets for trust_proxy and identity.header.trusted_proxies, on node:net's BlockList.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export interface AddressSet {
  has(address: string | undefined): boolean;
  readonly empty: boolean;
}

/**
 * How many verdicts one set remembers before it starts over. A gateway sees the same few peers on
 * nearly every request (its load balancers), while X-Forwarded-For entries are the client's to
 * choose: the memory stays bounded, and a client cycling through addresses only gets today's cost.
 */
const MAX_REMEMBERED_VERDICTS = 4_096;
/** The longest textual IP address (IPv4-mapped IPv6); anything longer is not one and is not remembered. */
const MAX_ADDRESS_LENGTH = 45;

/** Entries are validated by the config schema: `a.b.c.d[/n]` or `v6[/n]`. */
export function addressSet(cidrs: readonly string[]): AddressSet {
  const list = new BlockList();
  for (const entry of cidrs) {
    const [addr = '', bits] = entry.split('/');
    const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
    list.addSubnet(addr, bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits), type);
  }
  const empty = cidrs.length === 0;
  const check = (address: string): boolean => {
    const plain = unmapIPv4(address);
    if (isIPv4(plain)) return list.check(plain, 'ipv4');
    return isIPv6(plain) && list.check(plain, 'ipv6');
  };
  // BlockList.check parses the address on every call: ~3.5 µs here, a few % of a whole proxied
  // request, paid on every request once trust_proxy is set. The verdict for a string never changes
  // (a reload builds a new set), so it is worked out once per address.
  const verdicts = new Map<string, boolean>();
  return {
    empty,
    has(address) {
      if (empty || !address) return false;
      let verdict = verdicts.get(address);
      if (verdict === undefined) {
        verdict = check(address);
        if (address.length <= MAX_ADDRESS_LENGTH) {
          if (verdicts.size >= MAX_REMEMBERED_VERDICTS) verdicts.clear();
          verdicts.set(address, verdict);
        }
      }
      return verdict;
    },
  };
}

/** `::ffff:127.0.0.1` (a dual-stack socket's view of an IPv4 peer) → `127.0.0.1`. */
export function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}
