// Prometheus metrics for the admin listener (prom-client). Label children are created once here,
// so the hot path costs one increment per request and no label lookups.
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { FactorType } from './config/types.js';
import type { IdentityStats } from './identity/upstream.js';

export type Decision = 'passed' | 'gated_allowed' | 'step_up_required' | 'auth_required' | 'refused' | 'error' | 'own';

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Record<Decision, { inc(): void }>;
  private readonly verifications: Counter<'factor' | 'outcome'>;
  private readonly lockouts: Counter<string>;
  private readonly reloads: Counter<'outcome'>;
  /** The unlabelled series' observe: Histogram.observe builds a closure per call, this one is built once. */
  private readonly observeUpstreamLatency: (seconds: number) => void;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'stepgate_' });
    const requests = new Counter({ name: 'stepgate_requests_total', help: 'Requests by gate decision.', labelNames: ['decision'], registers: [this.registry] });
    const decisions: Decision[] = ['passed', 'gated_allowed', 'step_up_required', 'auth_required', 'refused', 'error', 'own'];
    this.requests = Object.fromEntries(decisions.map((d) => [d, requests.labels(d)])) as Record<Decision, { inc(): void }>;
    this.verifications = new Counter({ name: 'stepgate_verifications_total', help: 'Verification attempts by factor and outcome.', labelNames: ['factor', 'outcome'], registers: [this.registry] });
    this.lockouts = new Counter({ name: 'stepgate_lockouts_total', help: 'Users locked out of TOTP/recovery after repeated failures.', registers: [this.registry] });
    this.reloads = new Counter({ name: 'stepgate_config_reloads_total', help: 'routes.yaml reloads by outcome.', labelNames: ['outcome'], registers: [this.registry] });
    this.observeUpstreamLatency = new Histogram({
      name: 'stepgate_upstream_response_seconds',
      help: 'Time until the upstream answered with headers.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    }).labels().observe;
  }

  /** Exposes the upstream identity source's cache hits and misses. */
  trackIdentityCache(identityStats: IdentityStats): void {
    new Counter({
      name: 'stepgate_identity_lookups_total',
      help: 'Identity look-ups by cache result (hit: answered from cache; miss: asked the app).',
      labelNames: ['result'],
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc({ result: 'hit' }, identityStats.hits);
        this.inc({ result: 'miss' }, identityStats.misses);
      },
    });
  }

  request(decision: Decision): void {
    this.requests[decision].inc();
  }

  verification(factor: FactorType, outcome: 'success' | 'failure'): void {
    this.verifications.inc({ factor, outcome });
  }

  lockout(): void {
    this.lockouts.inc();
  }

  reload(ok: boolean): void {
    this.reloads.inc({ outcome: ok ? 'success' : 'failure' });
  }

  /** `startedAt`: performance.now() when the request was sent upstream. */
  upstreamAnswered(startedAt: number): void {
    this.observeUpstreamLatency((performance.now() - startedAt) / 1000);
  }
}
