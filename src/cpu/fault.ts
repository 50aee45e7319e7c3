/**
 * Page faults (#PF) as values: the architectural error code and the faulting address (CR2).
 */

/** #PF error-code bits (Intel SDM Vol. 3A §4.7, Figure 4-12). */
export const PF_PRESENT = 1; // P: 1 = protection violation on a present page; 0 = not present
export const PF_WRITE = 2; // W/R: the access was a write
export const PF_USER = 4; // U/S: the access was at CPL 3
export const PF_RSVD = 8; // RSVD: a reserved bit was set in some paging-structure entry
export const PF_FETCH = 16; // I/D: the access was an instruction fetch

/** The kind of memory access being translated. */
export type AccessKind = 'read' | 'write' | 'fetch';

/** A page fault: what the CPU reports instead of completing the access. */
export interface PageFault {
  /** The linear address that faulted (what CR2 receives). */
  readonly addr: number;
  /** The error code pushed by the #PF handler entry. */
  readonly errorCode: number;
}

/** The error code's bits by name, e.g. `P | W | U`, or `(not present, read, supervisor)`. */
export function describeErrorCode(code: number): string {
  const parts = [
    code & PF_PRESENT ? 'protection' : 'not-present',
    code & PF_FETCH ? 'fetch' : code & PF_WRITE ? 'write' : 'read',
    code & PF_USER ? 'user' : 'supervisor',
  ];
  if (code & PF_RSVD) parts.push('reserved-bit');
  return parts.join(', ');
}
