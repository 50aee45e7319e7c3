/**
 * A fluent TypeScript builder for scenarios. It writes the same `smpsim-scenario/1` document a
 * file would hold (`toJSON`) and `build()` runs it through `validateScenario`, so a scenario
 * written in TypeScript obeys exactly the rules, defaults and error messages of a JSON file:
 *
 *     scenario('unmap-without-shootdown')
 *       .describe('…')
 *       .machine({ cpus: 2 })
 *       .addressSpace('A', (as) => as.map4k(0x400000n, 0x200000, 'PRESENT|WRITABLE'))
 *       .cpu('A', (p) => p.load(0x400000n, 'r0').barrier('b1'))
 *       .cpu('A', (p) => p.barrier('b1'))
 *       .expect('none', ['stale-translation'])
 *       .build();
 *
 * Addresses and values are `bigint | number`, taken as the 64-bit value the file would write: a
 * higher-half address is written in canonical form (`0xffff_8000_0000_0000n`), as `VirtAddr.new`
 * takes it. Flags are a `PageTableFlags` or a string of crate names joined by `|`
 * (`'PRESENT | WRITABLE | NO_EXECUTE'`), or a `0x…` flag word.
 */

import { hex } from '../addr.ts';
import { PageTableFlags } from '../paging/flags.ts';
import type { AnyPageSize } from '../paging/page-size.ts';
import { childPath, ScenarioError, suggestion, validateScenario } from './load.ts';
import {
  type AddressSpaceJson,
  type CpuJson,
  type FrameJson,
  type HazardKind,
  type InstructionJson,
  type MachineJson,
  type MapEntryJson,
  type PageSizeName,
  type Protocol,
  type Register,
  SCENARIO_FORMAT,
  type Scenario,
  type ScenarioJson,
  type Width,
} from './scenario.ts';

/** An address or value: the 64-bit number the file would write in hex. */
export type NumberInput = bigint | number;
/** A page size, as a size object (`Size4KiB`) or its name (`'4KiB'`). */
export type SizeInput = AnyPageSize | PageSizeName;
/** Flags: a `PageTableFlags`, crate names joined by `|`, or a `0x…` flag word. */
export type FlagsInput = PageTableFlags | string;
/** A frame operand: an address, or a register holding one. */
export type FrameInput = NumberInput | Register | { readonly reg: Register };

/** `machine` fields; `cpus` defaults to the number of `cpu()` calls. */
export interface MachineOptions {
  cpus?: number;
  ramBytes?: NumberInput;
  tlb?: { entries?: number; ways?: number };
  pge?: boolean;
  pcid?: boolean;
  wp?: boolean;
  nxe?: boolean;
  protocol?: Protocol;
}

const FLAG_NAMES = Object.keys(PageTableFlags).filter(
  (k) =>
    /^[A-Z][A-Z0-9_]*$/.test(k) &&
    typeof PageTableFlags[k as keyof typeof PageTableFlags] === 'number',
);

/** The `0x…` form of a non-negative integer, or a ScenarioError at `path`. */
function hexOf(value: NumberInput, path: string): string {
  if (typeof value === 'bigint' ? value < 0n : !Number.isSafeInteger(value) || value < 0) {
    throw new ScenarioError(
      path,
      `${String(value)} is not a non-negative integer (pass a bigint for values of 2^53 and above)`,
    );
  }
  return hex(value);
}

/**
 * Flags from a `PageTableFlags` value or a string: crate names joined by `|` (`'PRESENT|WRITABLE'`,
 * spaces allowed) or a `0x…` flag word. Returns the file's hex form.
 *
 * @throws ScenarioError at `path` for an unknown name (with a spelling hint).
 */
export function flagsFromInput(flags: FlagsInput, path = ''): string {
  if (typeof flags === 'number') return PageTableFlags.hex(flags);
  const text = flags.trim();
  if (text.startsWith('0x')) return text;
  let value = PageTableFlags.empty;
  for (const part of text.split('|')) {
    const name = part.trim();
    if (!FLAG_NAMES.includes(name)) {
      throw new ScenarioError(
        path,
        `unknown flag ${JSON.stringify(name)}${suggestion(name, FLAG_NAMES)} in ${JSON.stringify(flags)} (use crate names joined by "|", e.g. "PRESENT | WRITABLE")`,
      );
    }
    value = PageTableFlags.of(
      value,
      PageTableFlags[name as keyof typeof PageTableFlags] as PageTableFlags,
    );
  }
  return PageTableFlags.hex(value);
}

function sizeName(size: SizeInput): PageSizeName {
  return typeof size === 'string' ? size : size.name;
}

function frameOf(frame: FrameInput, path: string): FrameJson {
  if (typeof frame === 'string') return frame;
  if (typeof frame === 'object') return frame.reg;
  return hexOf(frame, path);
}

/** The initial mappings of one address space. */
export class AddressSpaceBuilder {
  /** @internal */
  readonly entries: MapEntryJson[] = [];

  /** @internal */
  constructor(private readonly path: string) {}

  /** Maps `page` to `frame` with leaf `flags` at `size` (made with `map_to` before CPUs start). */
  map(size: SizeInput, page: NumberInput, frame: NumberInput, flags: FlagsInput): this {
    const path = childPath(childPath(this.path, 'map'), this.entries.length);
    this.entries.push({
      size: sizeName(size),
      page: hexOf(page, childPath(path, 'page')),
      frame: hexOf(frame, childPath(path, 'frame')),
      flags: flagsFromInput(flags, childPath(path, 'flags')),
    });
    return this;
  }

  /** A 4 KiB mapping. */
  map4k(page: NumberInput, frame: NumberInput, flags: FlagsInput): this {
    return this.map('4KiB', page, frame, flags);
  }

  /** A 2 MiB mapping (HUGE_PAGE is added by the mapper). */
  map2m(page: NumberInput, frame: NumberInput, flags: FlagsInput): this {
    return this.map('2MiB', page, frame, flags);
  }

  /** A 1 GiB mapping (HUGE_PAGE is added by the mapper). */
  map1g(page: NumberInput, frame: NumberInput, flags: FlagsInput): this {
    return this.map('1GiB', page, frame, flags);
  }
}

/** One CPU's program; every method appends one instruction (the spec's table, in order). */
export class ProgramBuilder {
  /** @internal */
  readonly program: InstructionJson[] = [];

  /** @internal */
  constructor(private readonly path: string) {}

  private get next(): string {
    return childPath(this.path, this.program.length);
  }

  private at(field: string): string {
    return childPath(this.next, field);
  }

  /** Appends an instruction written in the file's form (validated by `build()`). */
  instruction(ins: InstructionJson): this {
    this.program.push(ins);
    return this;
  }

  /** `load`: `width` bytes (default 8) at `addr` into `reg`; `user` is a CPL-3 access. */
  load(addr: NumberInput, reg: Register, opts: { width?: Width; user?: boolean } = {}): this {
    return this.instruction({ op: 'load', addr: hexOf(addr, this.at('addr')), reg, ...opts });
  }

  /** `store`: the low `width` bytes (default 8) of `value` at `addr`. */
  store(addr: NumberInput, value: NumberInput, opts: { width?: Width; user?: boolean } = {}): this {
    return this.instruction({
      op: 'store',
      addr: hexOf(addr, this.at('addr')),
      value: hexOf(value, this.at('value')),
      ...opts,
    });
  }

  /** `fetch`: an instruction fetch at `addr`. */
  fetch(addr: NumberInput, opts: { user?: boolean } = {}): this {
    return this.instruction({ op: 'fetch', addr: hexOf(addr, this.at('addr')), ...opts });
  }

  /** `map_to` on the current address space; `frame` may be a register (`'r1'`). */
  mapTo(size: SizeInput, page: NumberInput, frame: FrameInput, flags: FlagsInput): this {
    return this.instruction({
      op: 'map_to',
      size: sizeName(size),
      page: hexOf(page, this.at('page')),
      frame: frameOf(frame, this.at('frame')),
      flags: flagsFromInput(flags, this.at('flags')),
    });
  }

  /** `unmap`; the unmapped frame goes to `reg` if given. */
  unmap(size: SizeInput, page: NumberInput, reg?: Register): this {
    const base = { op: 'unmap' as const, size: sizeName(size), page: hexOf(page, this.at('page')) };
    return this.instruction(reg === undefined ? base : { ...base, reg });
  }

  private flagsOp(
    op: 'update_flags' | 'set_flags_p4_entry' | 'set_flags_p3_entry' | 'set_flags_p2_entry',
    size: SizeInput,
    page: NumberInput,
    flags: FlagsInput,
  ): this {
    return this.instruction({
      op,
      size: sizeName(size),
      page: hexOf(page, this.at('page')),
      flags: flagsFromInput(flags, this.at('flags')),
    });
  }

  /** `update_flags`. */
  updateFlags(size: SizeInput, page: NumberInput, flags: FlagsInput): this {
    return this.flagsOp('update_flags', size, page, flags);
  }

  /** `set_flags_p4_entry`. */
  setFlagsP4Entry(size: SizeInput, page: NumberInput, flags: FlagsInput): this {
    return this.flagsOp('set_flags_p4_entry', size, page, flags);
  }

  /** `set_flags_p3_entry`. */
  setFlagsP3Entry(size: SizeInput, page: NumberInput, flags: FlagsInput): this {
    return this.flagsOp('set_flags_p3_entry', size, page, flags);
  }

  /** `set_flags_p2_entry`. */
  setFlagsP2Entry(size: SizeInput, page: NumberInput, flags: FlagsInput): this {
    return this.flagsOp('set_flags_p2_entry', size, page, flags);
  }

  /** `flush`: the pending flush, under the machine's protocol. */
  flush(): this {
    return this.instruction({ op: 'flush' });
  }

  /** `ignore`: drop the pending flush on purpose. */
  ignore(): this {
    return this.instruction({ op: 'ignore' });
  }

  /** `invlpg addr`. */
  invlpg(addr: NumberInput): this {
    return this.instruction({ op: 'invlpg', addr: hexOf(addr, this.at('addr')) });
  }

  /** `flush_all`: a local CR3 reload. */
  flushAll(): this {
    return this.instruction({ op: 'flush_all' });
  }

  /** `toggle_pge`: clear and set CR4.PGE. */
  togglePge(): this {
    return this.instruction({ op: 'toggle_pge' });
  }

  /** `mov_cr3` to address space `as`; `noflush` sets CR3 bit 63 (needs `machine.pcid`). */
  movCr3(as: string, opts: { noflush?: boolean } = {}): this {
    return this.instruction({ op: 'mov_cr3', as, ...opts });
  }

  /** `invpcid` type 0: one address in one PCID. */
  invpcid(type: 0, pcid: number, addr: NumberInput): this;
  /** `invpcid` type 1: one PCID. */
  invpcid(type: 1, pcid: number): this;
  /** `invpcid` type 2 (all, GLOBAL too) or 3 (all but GLOBAL). */
  invpcid(type: 2 | 3): this;
  invpcid(type: 0 | 1 | 2 | 3, pcid?: number, addr?: NumberInput): this {
    if (type === 0) {
      return this.instruction({
        op: 'invpcid',
        type,
        pcid: pcid!,
        addr: hexOf(addr!, this.at('addr')),
      });
    }
    return this.instruction(
      type === 1 ? { op: 'invpcid', type, pcid: pcid! } : { op: 'invpcid', type },
    );
  }

  /** `alloc_frame` into `reg`. */
  allocFrame(reg: Register): this {
    return this.instruction({ op: 'alloc_frame', reg });
  }

  /** `free_frame` of a frame address or of the frame a register holds. */
  freeFrame(frame: FrameInput): this {
    const f = frameOf(frame, this.at('frame'));
    return this.instruction(
      typeof frame === 'number' || typeof frame === 'bigint'
        ? { op: 'free_frame', frame: f }
        : { op: 'free_frame', reg: f as Register },
    );
  }

  /** `barrier name`. */
  barrier(name: string): this {
    return this.instruction({ op: 'barrier', name });
  }

  /** `assert reg == value`. */
  assert(reg: Register, value: NumberInput): this {
    return this.instruction({ op: 'assert', reg, value: hexOf(value, this.at('value')) });
  }
}

/** Builds one scenario; see the file comment for an example. */
export class ScenarioBuilder {
  private description?: string;
  private machineOptions: MachineOptions = {};
  private readonly spaces: [string, AddressSpaceJson][] = [];
  private readonly cpus: CpuJson[] = [];
  private readonly expectations = new Map<Protocol, HazardKind[]>();

  constructor(private readonly name: string) {}

  /** The scenario's description: what happens and what it teaches. */
  describe(text: string): this {
    this.description = text;
    return this;
  }

  /** Sets machine fields (merged with earlier calls; the rest keep the spec's defaults). */
  machine(options: MachineOptions): this {
    this.machineOptions = {
      ...this.machineOptions,
      ...options,
      tlb:
        options.tlb === undefined
          ? this.machineOptions.tlb
          : { ...this.machineOptions.tlb, ...options.tlb },
    };
    return this;
  }

  /**
   * Declares an address space (declaration order is the call order) and its initial mappings;
   * `pcid` defaults to the 1-based declaration position.
   */
  addressSpace(
    name: string,
    define: (as: AddressSpaceBuilder) => unknown = () => {},
    options: { pcid?: number } = {},
  ): this {
    const path = childPath('address_spaces', name);
    if (this.spaces.some(([n]) => n === name)) {
      throw new ScenarioError(path, `address space ${JSON.stringify(name)} is declared twice`);
    }
    const space = new AddressSpaceBuilder(path);
    define(space);
    const json: AddressSpaceJson = { map: space.entries };
    if (options.pcid !== undefined) json.pcid = options.pcid;
    this.spaces.push([name, json]);
    return this;
  }

  /** Adds the next CPU: it starts in address space `as` and runs the program `define` writes. */
  cpu(as: string, define: (program: ProgramBuilder) => unknown = () => {}): this {
    const program = new ProgramBuilder(childPath(childPath('cpus', this.cpus.length), 'program'));
    define(program);
    this.cpus.push({ as, program: program.program });
    return this;
  }

  /** The exact set of hazard kinds `explore` must find under `protocol`. */
  expect(protocol: Protocol, kinds: readonly HazardKind[]): this {
    this.expectations.set(protocol, [...kinds]);
    return this;
  }

  /** The `smpsim-scenario/1` document (what `JSON.stringify` writes), not yet validated. */
  toJSON(): ScenarioJson {
    const m = this.machineOptions;
    const machine: MachineJson = { cpus: m.cpus ?? this.cpus.length };
    if (m.ramBytes !== undefined) machine.ram_bytes = hexOf(m.ramBytes, 'machine.ram_bytes');
    if (m.tlb !== undefined) machine.tlb = { ...m.tlb };
    for (const key of ['pge', 'pcid', 'wp', 'nxe', 'protocol'] as const) {
      if (m[key] !== undefined) (machine as unknown as Record<string, unknown>)[key] = m[key];
    }
    const doc: ScenarioJson = {
      format: SCENARIO_FORMAT,
      name: this.name,
      machine,
      address_spaces: Object.fromEntries(this.spaces.map(([n, s]) => [n, structuredClone(s)])),
      cpus: structuredClone(this.cpus),
    };
    if (this.description !== undefined) doc.description = this.description;
    if (this.expectations.size > 0) {
      doc.expect = Object.fromEntries([...this.expectations].map(([p, k]) => [p, [...k]]));
    }
    return doc;
  }

  /**
   * The validated scenario: exactly what loading `JSON.stringify(this)` as a file gives.
   *
   * @throws ScenarioError naming the first invalid field, in the file's terms.
   */
  build(): Scenario {
    return validateScenario(this.toJSON());
  }
}

/** Starts a scenario named `name`. */
export function scenario(name: string): ScenarioBuilder {
  return new ScenarioBuilder(name);
}
