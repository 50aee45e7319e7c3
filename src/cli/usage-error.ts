/**
 * `UsageError`: a mistake in how a command was called (a missing file, a bad option). The CLI
 * prints its message on one line and exits with status 2, never with a stack trace.
 */

/** A user's mistake in calling a command. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
