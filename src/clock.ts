// Time comes in through this seam so tests can move it (a TOTP step, a max_age window)
// without sleeping.
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
