// Config problems carry their position so `stepgate check` and a failed start print
// `file:line:col: message`, the form editors and CI annotations turn into links.

/** Problems that concern an environment variable rather than a file use this `file`. */
export const ENV_FILE = 'env';

export interface ConfigProblem {
  file: string;
  /** 1-based; 0 when the problem has no position (an environment variable, an unreadable file). */
  line: number;
  /** 1-based; 0 together with line 0. */
  col: number;
  message: string;
}

/** `file:line:col: message`; `env STEPGATE_LISTEN: message`; `file: message` for a whole file. */
export function formatProblem(p: ConfigProblem): string {
  if (p.file === ENV_FILE) return `${ENV_FILE} ${p.message}`;
  if (p.line === 0) return `${p.file}: ${p.message}`;
  return `${p.file}:${p.line}:${p.col}: ${p.message}`;
}

/** Thrown by the loaders with every problem found, never just the first. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
  }
}
