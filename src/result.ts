/**
 * `Result<T, E>`: how fallible calls return their errors, as the crate's `Result` does. Errors
 * are values; exceptions are kept for the places where the crate panics.
 */

/** Either a value or an error, discriminated by `ok`. */
export type Result<T, E> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: E };

/** Wraps a success value. */
export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

/** Wraps an error value. */
export function err<E>(error: E): { readonly ok: false; readonly error: E } {
  return { ok: false, error };
}
