// SPEC §3: parameter names compare case-insensitively after dropping leading spaces and a trailing
// `[…]`, as PHP reads them (`action[]=delete` and ` Action=delete` are both `action`).
export function normaliseParamName(name: string): string {
  return name.replace(/^ +/, '').replace(/\[[^\]]*\]$/, '').toLowerCase();
}
