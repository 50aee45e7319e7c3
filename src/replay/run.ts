/**
 * Executor of `mapper-replay/1`: runs each operation on an `OffsetPageTable` over fresh simulated
 * RAM and renders the result stream of the spec, byte for byte.
 */

import { hex, type PhysAddr, VirtAddr } from '../addr.ts';
import { PhysicalMemory } from '../memory/physical-memory.ts';
import { PageTableFlags } from '../paging/flags.ts';
import { PhysFrame } from '../paging/frame.ts';
import { BumpFrameAllocator } from '../paging/frame-allocator.ts';
import type {
  FlagUpdateError,
  MapToError,
  TranslateError,
  UnmapError,
} from '../paging/mapper/errors.ts';
import { TableFrameOutsideRam } from '../paging/mapper/errors.ts';
import type { MapperFlush, MapperFlushAll } from '../paging/mapper/flush.ts';
import { OffsetPageTable } from '../paging/mapper/offset-page-table.ts';
import { Page } from '../paging/page.ts';
import { type AnyPageSize, Size4KiB } from '../paging/page-size.ts';
import { PageTable } from '../paging/page-table.ts';
import { CratePanic } from '../paging/panic.ts';
import type { Result } from '../result.ts';
import type { ReplayFile, ReplayOp, ReplayOpName } from './format.ts';

/** How a replay ended: its output lines and the exit status of the spec (0, 2 or 3). */
export interface ReplayOutcome {
  /** Result lines, one per executed operation, then the state line on success. */
  readonly lines: string[];
  /** 0: every line ran; 2: a walk left RAM (message in `error`); 3: the crate would panic. */
  readonly status: 0 | 2 | 3;
  /** The one-line diagnostic for status 2. */
  readonly error?: string;
}

/** The machine a replay runs on. */
interface ReplayMachine {
  readonly memory: PhysicalMemory;
  readonly mapper: OffsetPageTable;
  readonly allocator: BumpFrameAllocator;
}

type AnyError = MapToError<AnyPageSize> | UnmapError | FlagUpdateError | TranslateError;

function errorLine(e: AnyError): string {
  switch (e.kind) {
    case 'PageAlreadyMapped':
      return JSON.stringify({ err: e.kind, frame: hex(e.frame.startAddress) });
    case 'InvalidFrameAddress':
      return JSON.stringify({ err: e.kind, addr: hex(e.addr) });
    default:
      return JSON.stringify({ err: e.kind });
  }
}

/** Replay always ignores the obligation: it checks page-table semantics, not TLBs. */
function flushLine(r: Result<MapperFlush<AnyPageSize>, AnyError>): string {
  if (!r.ok) return errorLine(r.error);
  r.value.ignore();
  return JSON.stringify({ ok: 'flush', page: VirtAddr.hex(r.value.page().startAddress) });
}

function flushAllLine(r: Result<MapperFlushAll, FlagUpdateError>): string {
  if (!r.ok) return errorLine(r.error);
  r.value.ignore();
  return JSON.stringify({ ok: 'flush_all' });
}

const page = (op: ReplayOp): Page<AnyPageSize> =>
  Page.fromStartAddressUnchecked(op.page!, op.size!);
const frame = (op: ReplayOp): PhysFrame<AnyPageSize> =>
  PhysFrame.fromStartAddressUnchecked(op.frame!, op.size!);

/**
 * The one table from the format's snake_case op names to the crate calls (camelCase here) and
 * their rendering. Field presence was validated by the parser.
 */
const OPS: Readonly<Record<ReplayOpName, (m: ReplayMachine, op: ReplayOp) => string>> = {
  map_to: (m, op) => flushLine(m.mapper.mapTo(page(op), frame(op), op.flags!, m.allocator)),
  map_to_with_table_flags: (m, op) =>
    flushLine(
      m.mapper.mapToWithTableFlags(page(op), frame(op), op.flags!, op.parentFlags!, m.allocator),
    ),
  identity_map: (m, op) => flushLine(m.mapper.identityMap(frame(op), op.flags!, m.allocator)),
  unmap: (m, op) => {
    const r = m.mapper.unmap(page(op));
    if (!r.ok) return errorLine(r.error);
    r.value.flush.ignore();
    return JSON.stringify({
      ok: 'flush',
      page: VirtAddr.hex(op.page!),
      frame: hex(r.value.frame.startAddress),
    });
  },
  update_flags: (m, op) => flushLine(m.mapper.updateFlags(page(op), op.flags!)),
  set_flags_p4_entry: (m, op) => flushAllLine(m.mapper.setFlagsP4Entry(page(op), op.flags!)),
  set_flags_p3_entry: (m, op) => flushAllLine(m.mapper.setFlagsP3Entry(page(op), op.flags!)),
  set_flags_p2_entry: (m, op) => flushAllLine(m.mapper.setFlagsP2Entry(page(op), op.flags!)),
  translate_page: (m, op) => {
    const r = m.mapper.translatePage(page(op));
    return r.ok
      ? JSON.stringify({ ok: 'frame', frame: hex(r.value.startAddress) })
      : errorLine(r.error);
  },
  translate: (m, op) => {
    const r = m.mapper.translate(op.addr!);
    switch (r.kind) {
      case 'Mapped':
        return JSON.stringify({
          ok: 'mapped',
          size: r.frame.size.name,
          frame: hex(r.frame.startAddress),
          offset: hex(r.offset),
          flags: PageTableFlags.hex(r.flags),
        });
      case 'NotMapped':
        return JSON.stringify({ ok: 'not_mapped' });
      case 'InvalidFrameAddress':
        return JSON.stringify({ ok: 'invalid_frame_address', addr: hex(r.addr) });
    }
  },
  translate_addr: (m, op) => {
    const a = m.mapper.translateAddr(op.addr!);
    return a === undefined
      ? JSON.stringify({ ok: 'none' })
      : JSON.stringify({ ok: 'addr', addr: hex(a) });
  },
};

/**
 * The final state line: every non-zero entry of the level-4 table and of every frame the
 * allocator handed out, sorted by table address, then index.
 */
export function stateLine(m: ReplayMachine): string {
  const tables = new Set<number>([m.mapper.level4Frame.startAddress]);
  for (const f of m.allocator.issued()) tables.add(f.startAddress);
  const rows: string[] = [];
  for (const t of [...tables].sort((a, b) => a - b)) {
    // A frame the allocator issued is in RAM unless the header's range leaves it; such a frame
    // could never have been linked (the walk would have stopped with status 2), so skip it.
    if (!m.memory.contains(t, 4096)) continue;
    const table = new PageTable(
      m.memory,
      PhysFrame.fromStartAddressUnchecked(t as PhysAddr, Size4KiB),
    );
    for (const [i, e] of table.usedEntries())
      rows.push(`[${JSON.stringify(hex(t))},${i},${JSON.stringify(hex(e.bits()))}]`);
  }
  return `{"state":[${rows.join(',')}]}`;
}

/** Runs a parsed replay file on fresh RAM and returns its output and exit status. */
export function runReplay(file: ReplayFile): ReplayOutcome {
  const { header } = file;
  const memory = new PhysicalMemory(header.ramBytes);
  const machine: ReplayMachine = {
    memory,
    mapper: new OffsetPageTable(memory, PhysFrame.fromStartAddressUnchecked(header.p4, Size4KiB)),
    allocator: new BumpFrameAllocator(header.allocStart, header.allocEnd),
  };
  const lines: string[] = [];
  for (const op of file.ops) {
    try {
      lines.push(OPS[op.op](machine, op));
    } catch (e) {
      if (e instanceof CratePanic) {
        lines.push(JSON.stringify({ panic: e.message }));
        return { lines, status: 3 };
      }
      if (e instanceof TableFrameOutsideRam) {
        const field = op.page !== undefined ? 'page' : op.addr !== undefined ? 'addr' : 'frame';
        return { lines, status: 2, error: `line ${op.line}: field '${field}': ${e.message}` };
      }
      throw e;
    }
  }
  lines.push(stateLine(machine));
  return { lines, status: 0 };
}
