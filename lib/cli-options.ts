/**
 * Command-line flags, checked by the same rules as the API's options (validate.ts) and named
 * as the user typed them. A flag that breaks its rule is a usage error: exit code 2.
 */
import { DifFaceError } from './errors';
import * as is from './validate';

export class UsageError extends Error {}

/** Runs a rule; an EARG it throws becomes a usage error with the same message. */
export function usage<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof DifFaceError && error.code === 'EARG') throw new UsageError(error.message);
    throw error;
  }
}

/** A numeric flag: undefined when not given, else its value checked by `rule`. */
export function numericFlag<T>(text: string | undefined, flag: string, rule: (value: unknown, name: string) => T): T | undefined {
  if (text === undefined) return undefined;
  return usage(() => rule(is.numberFromText(text, `--${flag}`), `--${flag}`));
}

/** A text flag checked by `rule`. */
export function textFlag<T>(text: string, flag: string, rule: (value: unknown, name: string) => T): T {
  return usage(() => rule(text, `--${flag}`));
}
