/**
 * The `smpsim-scenario/1` model (`shared/spec/scenario.md`): a machine, address spaces with initial
 * mappings, one program per CPU, and the hazards `explore` must find. Two shapes live here: the
 * validated `Scenario` every layer consumes (typed addresses, bigint values, defaults filled in)
 * and `ScenarioJson`, the file as written (snake_case keys, hex strings, optional defaults).
 */

import type { PhysAddr, VirtAddr } from '../addr.ts';
import type { Width } from '../memory/physical-memory.ts';
import type { PageTableFlags } from '../paging/flags.ts';
import type { AnyPageSize } from '../paging/page-size.ts';

export type { Width } from '../memory/physical-memory.ts';

/** The `format` value every scenario file carries. */
export const SCENARIO_FORMAT = 'smpsim-scenario/1';

/** The number of general-purpose registers of a simulated CPU (`r0`..`r15`). */
export const REGISTER_COUNT = 16;

/** The index of a register, 0..15. */
export type RegisterIndex = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15;

/** A register name, `r0`..`r15`. Registers hold 64-bit values and start at 0. */
export type Register = `r${RegisterIndex}`;

/** The most CPUs a machine may have (a cpumask is one 64-bit word). */
export const MAX_CPUS = 64;

/** The largest PCID (CR3 bits 0..11). PCID 0 is what every entry gets with CR4.PCIDE off. */
export const MAX_PCID = 4095;

/** The shootdown protocols, in the spec's order. */
export const PROTOCOLS = ['none', 'sync-ipi', 'batched', 'lazy', 'broadcast'] as const;

/** What `flush()` of a `MapperFlush` does on an SMP machine (spec § Protocols). */
export type Protocol = (typeof PROTOCOLS)[number];

/** The hazard kinds, in the spec's order (spec § Hazard kinds). */
export const HAZARD_KINDS = [
  'stale-translation',
  'use-after-free',
  'stale-permission',
  'global-leak',
  'lost-dirty',
  'dropped-flush',
  'deadlock',
] as const;

/** A named coherence failure the checker reports. */
export type HazardKind = (typeof HAZARD_KINDS)[number];

/** The access widths of `load` and `store`, in bytes. */
export const WIDTHS: readonly Width[] = [1, 2, 4, 8];

/** The defaults of every `machine` field but `cpus` (spec § File). */
export const MACHINE_DEFAULTS = Object.freeze({
  /** 16 MiB. */
  ramBytes: 16 * 1024 * 1024,
  tlb: Object.freeze({ entries: 64, ways: 4 }),
  pge: true,
  pcid: false,
  wp: true,
  nxe: true,
  protocol: 'sync-ipi',
} as const);

// ---- the validated model ------------------------------------------------------------------------

/** The machine every CPU of the scenario runs on. */
export interface MachineSpec {
  /** Number of CPUs, 1..64; equals `Scenario.cpus.length`. */
  readonly cpus: number;
  /** RAM size: a positive multiple of 4 KiB, at most 4 GiB. */
  readonly ramBytes: number;
  /** Each CPU's TLB: `entries / ways` sets (a power of two) of `ways` entries. */
  readonly tlb: { readonly entries: number; readonly ways: number };
  /** CR4.PGE: GLOBAL entries survive CR3 writes. */
  readonly pge: boolean;
  /** CR4.PCIDE: TLB entries are tagged with the address space's PCID. */
  readonly pcid: boolean;
  /** CR0.WP: supervisor writes to read-only pages fault. */
  readonly wp: boolean;
  /** EFER.NXE: NO_EXECUTE is honoured (without it, bit 63 is a reserved bit). */
  readonly nxe: boolean;
  /** The shootdown protocol `run` uses unless `--protocol` overrides it. */
  readonly protocol: Protocol;
}

/** One initial mapping, made with `map_to` before any CPU starts. */
export interface InitialMapping {
  readonly size: AnyPageSize;
  /** Canonical and aligned to `size`. */
  readonly page: VirtAddr;
  /** Aligned to `size`, and `[frame, frame + size)` lies in RAM. */
  readonly frame: PhysAddr;
  /** Leaf flags; bits 12..51 are never set, and a 4 KiB leaf never has HUGE_PAGE. */
  readonly flags: PageTableFlags;
}

/** An address space: a level-4 table built from its initial mappings. */
export interface AddressSpaceSpec {
  /** Unique; starts with a letter or `_` (so JSON keeps declaration order). */
  readonly name: string;
  /** 1..4095, unique; the 1-based declaration position unless the file gives one. */
  readonly pcid: number;
  /** In file order. */
  readonly map: readonly InitialMapping[];
}

/** A frame operand: a physical address written in the file, or a register holding one. */
export type FrameOperand = PhysAddr | { readonly reg: Register };

/** `load`: reads `width` bytes at `addr` into `reg` (zero-extended). */
export interface LoadInstruction {
  readonly op: 'load';
  /** Any alignment, but `[addr, addr + width)` stays inside one 4 KiB page. */
  readonly addr: VirtAddr;
  readonly width: Width;
  readonly reg: Register;
  /** A CPL-3 access, checked against USER_ACCESSIBLE. */
  readonly user: boolean;
}

/** `store`: writes the low `width` bytes of `value` at `addr`. */
export interface StoreInstruction {
  readonly op: 'store';
  /** Any alignment, but `[addr, addr + width)` stays inside one 4 KiB page. */
  readonly addr: VirtAddr;
  /** Fits in `width` bytes. */
  readonly value: bigint;
  readonly width: Width;
  readonly user: boolean;
}

/** `fetch`: an instruction fetch at `addr`, checked against NO_EXECUTE. */
export interface FetchInstruction {
  readonly op: 'fetch';
  readonly addr: VirtAddr;
  readonly user: boolean;
}

/** `map_to`: `Mapper::map_to` on the CPU's current address space. */
export interface MapToInstruction {
  readonly op: 'map_to';
  readonly size: AnyPageSize;
  /** Canonical and aligned to `size`. */
  readonly page: VirtAddr;
  /** A written frame is aligned to `size` and lies in RAM; a register is checked when it runs. */
  readonly frame: FrameOperand;
  /** Bits 12..51 clear; no HUGE_PAGE for 4 KiB (the crate panics on it). */
  readonly flags: PageTableFlags;
}

/** `unmap`: `Mapper::unmap`; the unmapped frame's address goes to `reg` if given. */
export interface UnmapInstruction {
  readonly op: 'unmap';
  readonly size: AnyPageSize;
  readonly page: VirtAddr;
  readonly reg?: Register;
}

/** `update_flags`: `Mapper::update_flags`. */
export interface UpdateFlagsInstruction {
  readonly op: 'update_flags';
  readonly size: AnyPageSize;
  readonly page: VirtAddr;
  readonly flags: PageTableFlags;
}

/** `set_flags_p4_entry`: `Mapper::set_flags_p4_entry` (returns a `MapperFlushAll`). */
export interface SetFlagsP4EntryInstruction {
  readonly op: 'set_flags_p4_entry';
  readonly size: AnyPageSize;
  readonly page: VirtAddr;
  readonly flags: PageTableFlags;
}

/** `set_flags_p3_entry`: `Mapper::set_flags_p3_entry`. */
export interface SetFlagsP3EntryInstruction {
  readonly op: 'set_flags_p3_entry';
  readonly size: AnyPageSize;
  readonly page: VirtAddr;
  readonly flags: PageTableFlags;
}

/** `set_flags_p2_entry`: `Mapper::set_flags_p2_entry`. */
export interface SetFlagsP2EntryInstruction {
  readonly op: 'set_flags_p2_entry';
  readonly size: AnyPageSize;
  readonly page: VirtAddr;
  readonly flags: PageTableFlags;
}

/** `flush`: `flush()` the pending flush under the machine's protocol (nothing pending: no-op). */
export interface FlushInstruction {
  readonly op: 'flush';
}

/** `ignore`: `ignore()` the pending flush (nothing pending: no-op). */
export interface IgnoreInstruction {
  readonly op: 'ignore';
}

/** `invlpg`: local single-page invalidation (GLOBAL entries too). */
export interface InvlpgInstruction {
  readonly op: 'invlpg';
  readonly addr: VirtAddr;
}

/** `flush_all`: local CR3 reload (GLOBAL entries survive). */
export interface FlushAllInstruction {
  readonly op: 'flush_all';
}

/** `toggle_pge`: clear and set CR4.PGE, evicting every entry. */
export interface TogglePgeInstruction {
  readonly op: 'toggle_pge';
}

/** `mov_cr3`: switch to another address space. */
export interface MovCr3Instruction {
  readonly op: 'mov_cr3';
  /** A declared address space. */
  readonly as: string;
  /** CR3 bit 63: keep the PCID's cached entries. Only with `machine.pcid` (else a reserved bit). */
  readonly noflush: boolean;
}

/** `invpcid` type 0: one address in one PCID, GLOBAL entries excepted. */
export interface InvpcidAddressInstruction {
  readonly op: 'invpcid';
  readonly type: 0;
  /** 0..4095; only 0 when `machine.pcid` is off. */
  readonly pcid: number;
  readonly addr: VirtAddr;
}

/** `invpcid` type 1: every non-GLOBAL entry of one PCID. */
export interface InvpcidSingleInstruction {
  readonly op: 'invpcid';
  readonly type: 1;
  /** 0..4095; only 0 when `machine.pcid` is off. */
  readonly pcid: number;
}

/** `invpcid` type 2 (everything, GLOBAL included) or 3 (everything but GLOBAL), all PCIDs. */
export interface InvpcidAllInstruction {
  readonly op: 'invpcid';
  readonly type: 2 | 3;
}

/** `invpcid`, discriminated by `type`: the descriptor fields a type ignores are absent. */
export type InvpcidInstruction =
  | InvpcidAddressInstruction
  | InvpcidSingleInstruction
  | InvpcidAllInstruction;

/** `alloc_frame`: take a zeroed frame from the shared allocator into `reg`. */
export interface AllocFrameInstruction {
  readonly op: 'alloc_frame';
  readonly reg: Register;
}

/** `free_frame`: return a frame to the shared allocator. */
export interface FreeFrameInstruction {
  readonly op: 'free_frame';
  /** A written frame is 4 KiB aligned and lies in RAM; a register is checked when it runs. */
  readonly frame: FrameOperand;
}

/** `barrier`: wait for every CPU whose program names this barrier. */
export interface BarrierInstruction {
  readonly op: 'barrier';
  /** Non-empty; at most once per program. */
  readonly name: string;
}

/** `assert`: fail the run (not a hazard) if `reg` differs from `value`. */
export interface AssertInstruction {
  readonly op: 'assert';
  readonly reg: Register;
  readonly value: bigint;
}

/** One instruction of a CPU program, discriminated by `op` (the spec's instruction table). */
export type Instruction =
  | LoadInstruction
  | StoreInstruction
  | FetchInstruction
  | MapToInstruction
  | UnmapInstruction
  | UpdateFlagsInstruction
  | SetFlagsP4EntryInstruction
  | SetFlagsP3EntryInstruction
  | SetFlagsP2EntryInstruction
  | FlushInstruction
  | IgnoreInstruction
  | InvlpgInstruction
  | FlushAllInstruction
  | TogglePgeInstruction
  | MovCr3Instruction
  | InvpcidInstruction
  | AllocFrameInstruction
  | FreeFrameInstruction
  | BarrierInstruction
  | AssertInstruction;

/** An instruction name. */
export type InstructionOp = Instruction['op'];

/** The instructions that are Mapper calls on the CPU's current address space. */
export type MapperInstruction =
  | MapToInstruction
  | UnmapInstruction
  | UpdateFlagsInstruction
  | SetFlagsP4EntryInstruction
  | SetFlagsP3EntryInstruction
  | SetFlagsP2EntryInstruction;

/** One CPU: the address space in CR3 when it starts, and its program. */
export interface CpuSpec {
  /** A declared address space. */
  readonly as: string;
  readonly program: readonly Instruction[];
}

/** A validated scenario: every field present, every default applied. */
export interface Scenario {
  /** Starts with a letter or digit; letters, digits, `.`, `_`, `-` (usable as `smpsim run NAME`). */
  readonly name: string;
  /** What happens and what it teaches; `''` when the file gives none. */
  readonly description: string;
  readonly machine: MachineSpec;
  /** In declaration order. */
  readonly addressSpaces: readonly AddressSpaceSpec[];
  /** CPU i is `cpus[i]`; `cpus.length === machine.cpus`. */
  readonly cpus: readonly CpuSpec[];
  /** Per protocol, the exact set of hazard kinds `explore` must find (spec order, no repeats). */
  readonly expect?: Readonly<Partial<Record<Protocol, readonly HazardKind[]>>>;
}

// ---- the file shape -----------------------------------------------------------------------------

/** A page-size name as the file writes it. */
export type PageSizeName = AnyPageSize['name'];

/** A `0x…` hex string (lowercase by convention; any case is accepted). */
export type HexString = string;

/** `machine` as written: only `cpus` is required. */
export interface MachineJson {
  cpus: number;
  ram_bytes?: HexString;
  tlb?: { entries?: number; ways?: number };
  pge?: boolean;
  pcid?: boolean;
  wp?: boolean;
  nxe?: boolean;
  protocol?: Protocol;
}

/** One initial mapping as written: every field required. */
export interface MapEntryJson {
  size: PageSizeName;
  page: HexString;
  frame: HexString;
  flags: HexString;
}

/** An address space as written (`map` may be omitted for an empty space). */
export interface AddressSpaceJson {
  pcid?: number;
  map?: MapEntryJson[];
}

/** A frame operand as written: a hex address or a register name. */
export type FrameJson = HexString | Register;

type SizedPageJson = { size: PageSizeName; page: HexString };

/** One instruction as written: optional fields take their defaults. */
export type InstructionJson =
  | { op: 'load'; addr: HexString; width?: Width; reg: Register; user?: boolean }
  | { op: 'store'; addr: HexString; value: HexString; width?: Width; user?: boolean }
  | { op: 'fetch'; addr: HexString; user?: boolean }
  | ({ op: 'map_to'; frame: FrameJson; flags: HexString } & SizedPageJson)
  | ({ op: 'unmap'; reg?: Register } & SizedPageJson)
  | ({
      op: 'update_flags' | 'set_flags_p4_entry' | 'set_flags_p3_entry' | 'set_flags_p2_entry';
      flags: HexString;
    } & SizedPageJson)
  | { op: 'flush' | 'ignore' | 'flush_all' | 'toggle_pge' }
  | { op: 'invlpg'; addr: HexString }
  | { op: 'mov_cr3'; as: string; noflush?: boolean }
  | { op: 'invpcid'; type: 0; pcid: number; addr: HexString }
  | { op: 'invpcid'; type: 1; pcid: number }
  | { op: 'invpcid'; type: 2 | 3 }
  | { op: 'alloc_frame'; reg: Register }
  | { op: 'free_frame'; frame: FrameJson }
  | { op: 'free_frame'; reg: Register }
  | { op: 'barrier'; name: string }
  | { op: 'assert'; reg: Register; value: HexString };

/** A CPU as written. */
export interface CpuJson {
  as: string;
  program: InstructionJson[];
}

/** A whole `smpsim-scenario/1` file. Key order of `address_spaces` is declaration order. */
export interface ScenarioJson {
  format: typeof SCENARIO_FORMAT;
  name: string;
  description?: string;
  machine: MachineJson;
  address_spaces: Record<string, AddressSpaceJson>;
  cpus: CpuJson[];
  expect?: Partial<Record<Protocol, HazardKind[]>>;
}
