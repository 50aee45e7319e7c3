/**
 * Typed trace events: the decoded form of `TraceRecord`s that the checker, the timeline and the
 * benchmarks read. One discriminated union; `decodeEvent` is the only place that knows which
 * record field carries what.
 */

import type { PhysAddr, VirtAddr } from '../addr.ts';
import {
  ACCESS_NAMES,
  EVICT_REASON_NAMES,
  FLUSH_OUTCOME_NAMES,
  MAINTENANCE_NAMES,
  StaleBits,
  TraceKind,
} from './record.ts';
import type { TraceRecord } from './ring.ts';

type Access = (typeof ACCESS_NAMES)[number];

/** Fields every event has: who, when, and the record's sequence number in its CPU's ring. */
interface EventBase {
  readonly cpu: number;
  readonly step: number;
  readonly seq: number;
}

/** A decoded trace record. */
export type TraceEvent = EventBase &
  (
    | { readonly type: 'instruction'; readonly pc: number }
    | {
        readonly type: 'tlb-hit';
        readonly addr: VirtAddr;
        readonly slot: number;
        readonly frame: PhysAddr;
        readonly access: Access;
      }
    | { readonly type: 'tlb-miss'; readonly addr: VirtAddr; readonly access: Access }
    | {
        readonly type: 'tlb-fill';
        readonly page: VirtAddr;
        readonly frame: PhysAddr;
        readonly attr: number;
        readonly pcid: number;
      }
    | {
        readonly type: 'tlb-evict';
        readonly page: VirtAddr;
        readonly frame: PhysAddr;
        readonly attr: number;
        readonly reason: (typeof EVICT_REASON_NAMES)[number];
      }
    | {
        readonly type: 'walk';
        readonly addr: VirtAddr;
        readonly entriesRead: number;
        readonly adUpdates: number;
        readonly frame: PhysAddr | undefined;
      }
    | {
        readonly type: 'ad-set';
        readonly entryAddress: PhysAddr;
        readonly bits: number;
        readonly level: number;
      }
    | { readonly type: 'fault'; readonly addr: VirtAddr; readonly errorCode: number }
    | {
        readonly type: 'access';
        readonly addr: VirtAddr;
        readonly phys: PhysAddr;
        readonly width: number;
        readonly access: Access;
      }
    | {
        readonly type: 'mapper';
        readonly op: number;
        readonly page: VirtAddr;
        readonly frame: PhysAddr | undefined;
        readonly result: number;
      }
    | {
        readonly type: 'flush';
        readonly page: VirtAddr | undefined;
        readonly outcome: (typeof FLUSH_OUTCOME_NAMES)[number];
      }
    | {
        readonly type: 'maintenance';
        readonly op: (typeof MAINTENANCE_NAMES)[number];
        readonly addr: VirtAddr | undefined;
        readonly pcid: number | undefined;
        readonly evicted: number;
      }
    | {
        readonly type: 'cr3-write';
        readonly table: PhysAddr;
        readonly pcid: number;
        readonly noflush: boolean;
      }
    | {
        readonly type: 'frame-free';
        readonly frame: PhysAddr;
        readonly how: 'now' | 'held' | 'released';
      }
    | { readonly type: 'frame-alloc'; readonly frame: PhysAddr }
    | { readonly type: 'halt'; readonly how: 'halted' | 'faulted' | 'failed' }
    | {
        readonly type: 'ipi-send';
        readonly target: number;
        readonly full: boolean;
        readonly pages: number;
        readonly lazy: boolean;
        readonly broadcast: boolean;
      }
    | {
        readonly type: 'ipi-receive';
        readonly initiator: number;
        readonly full: boolean;
        readonly pages: number;
        readonly broadcast: boolean;
        /** Applied at an epoch boundary (protocol lazy), not delivered as an interrupt. */
        readonly lazy: boolean;
      }
    | { readonly type: 'shootdown-done'; readonly acks: number; readonly cycles: number }
    | {
        readonly type: 'stale';
        readonly addr: VirtAddr;
        /** What the tables give now, or undefined when they do not map the address. */
        readonly tablePhys: PhysAddr | undefined;
        readonly translation: boolean;
        readonly permission: boolean;
        readonly lostDirty: boolean;
        readonly access: Access;
      }
    | { readonly type: 'coherent'; readonly flushes: number }
    | { readonly type: 'barrier-wait'; readonly barrier: number }
    | { readonly type: 'barrier-pass'; readonly barrier: number; readonly waited: boolean }
    | { readonly type: 'unknown'; readonly kind: number }
  );

const v = (x: number) => x as VirtAddr;
const p = (x: number) => x as PhysAddr;
const opt = <T>(x: number, f: (n: number) => T): T | undefined => (x < 0 ? undefined : f(x));

/** Decodes one record (an unknown kind decodes to `type: 'unknown'`, never throws). */
export function decodeEvent(r: TraceRecord): TraceEvent {
  switch (r.kind) {
    case TraceKind.Instruction:
      return { cpu: r.cpu, step: r.step, seq: r.seq, type: 'instruction', pc: r.a };
    case TraceKind.TlbHit:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'tlb-hit',
        addr: v(r.a),
        slot: r.b,
        frame: p(r.c),
        access: ACCESS_NAMES[r.d]!,
      };
    case TraceKind.TlbMiss:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'tlb-miss',
        addr: v(r.a),
        access: ACCESS_NAMES[r.d]!,
      };
    case TraceKind.TlbFill:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'tlb-fill',
        page: v(r.a),
        frame: p(r.b),
        attr: r.c,
        pcid: r.d,
      };
    case TraceKind.TlbEvict:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'tlb-evict',
        page: v(r.a),
        frame: p(r.b),
        attr: r.c,
        reason: EVICT_REASON_NAMES[r.d]!,
      };
    case TraceKind.Walk:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'walk',
        addr: v(r.a),
        entriesRead: r.b,
        adUpdates: r.c,
        frame: opt(r.d, p),
      };
    case TraceKind.AdSet:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'ad-set',
        entryAddress: p(r.a),
        bits: r.b,
        level: r.c,
      };
    case TraceKind.Fault:
      return { cpu: r.cpu, step: r.step, seq: r.seq, type: 'fault', addr: v(r.a), errorCode: r.b };
    case TraceKind.Access:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'access',
        addr: v(r.a),
        phys: p(r.b),
        width: r.c,
        access: ACCESS_NAMES[r.d]!,
      };
    case TraceKind.Mapper:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'mapper',
        op: r.a,
        page: v(r.b),
        frame: opt(r.c, p),
        result: r.d,
      };
    case TraceKind.Flush:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'flush',
        page: opt(r.a, v),
        outcome: FLUSH_OUTCOME_NAMES[r.b]!,
      };
    case TraceKind.Maintenance:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'maintenance',
        op: MAINTENANCE_NAMES[r.a]!,
        addr: opt(r.b, v),
        pcid: opt(r.c, (n) => n),
        evicted: r.d,
      };
    case TraceKind.Cr3Write:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'cr3-write',
        table: p(r.a),
        pcid: r.b,
        noflush: r.c === 1,
      };
    case TraceKind.FrameFree:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'frame-free',
        frame: p(r.a),
        how: r.b === 1 ? 'held' : r.b === 2 ? 'released' : 'now',
      };
    case TraceKind.FrameAlloc:
      return { cpu: r.cpu, step: r.step, seq: r.seq, type: 'frame-alloc', frame: p(r.a) };
    case TraceKind.Halt:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'halt',
        how: r.a === 0 ? 'halted' : r.a === 1 ? 'faulted' : 'failed',
      };
    case TraceKind.IpiSend:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'ipi-send',
        target: r.a,
        full: r.b === 2,
        pages: r.c,
        lazy: (r.d & 1) !== 0,
        broadcast: (r.d & 2) !== 0,
      };
    case TraceKind.IpiReceive:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'ipi-receive',
        initiator: r.a,
        full: r.b === 2,
        pages: r.c,
        broadcast: r.d === 1,
        lazy: r.d === 2,
      };
    case TraceKind.ShootdownDone:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'shootdown-done',
        acks: r.a,
        cycles: r.b,
      };
    case TraceKind.Stale:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'stale',
        addr: v(r.a),
        tablePhys: opt(r.b, p),
        translation: (r.c & StaleBits.Translation) !== 0,
        permission: (r.c & StaleBits.Permission) !== 0,
        lostDirty: (r.c & StaleBits.LostDirty) !== 0,
        access: ACCESS_NAMES[r.d]!,
      };
    case TraceKind.Coherent:
      return { cpu: r.cpu, step: r.step, seq: r.seq, type: 'coherent', flushes: r.a };
    case TraceKind.BarrierWait:
      return { cpu: r.cpu, step: r.step, seq: r.seq, type: 'barrier-wait', barrier: r.a };
    case TraceKind.BarrierPass:
      return {
        cpu: r.cpu,
        step: r.step,
        seq: r.seq,
        type: 'barrier-pass',
        barrier: r.a,
        waited: r.b === 1,
      };
    default:
      return { cpu: r.cpu, step: r.step, seq: r.seq, type: 'unknown', kind: r.kind };
  }
}
