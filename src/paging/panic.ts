/**
 * `CratePanic`: thrown exactly where the Rust `x86_64` crate panics (a programming error there),
 * never for an error the crate returns as a value.
 */

/** A condition on which the crate would panic; `message` says which rule was broken. */
export class CratePanic extends Error {
  override readonly name = 'CratePanic';
}
