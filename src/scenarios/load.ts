/**
 * Reader of `smpsim-scenario/1` files (`shared/spec/scenario.md`): parses JSON, then validates
 * every field before anything runs, and turns the file into a `Scenario` with every default
 * applied. `scenarioToJson` is the inverse: a complete file for a `Scenario`.
 *
 * Every error is a `ScenarioError` naming where it is (`cpus[1].program[3].addr`,
 * `address_spaces.A.map[0].frame`, `machine.tlb.ways`) and what is wrong. Validation stops at the
 * first error. Unknown fields are errors, so a typo never silently becomes a default.
 */

import { hex, type PhysAddr, VirtAddr } from '../addr.ts';
import { MAX_RAM_BYTES } from '../memory/physical-memory.ts';
import { PageTableFlags } from '../paging/flags.ts';
import { type AnyPageSize, Size4KiB } from '../paging/page-size.ts';
import {
  flagsField,
  hexField,
  physField,
  ReplayFormatError,
  sizeField,
  virtField,
} from '../replay/format.ts';
import {
  type AddressSpaceSpec,
  type CpuSpec,
  type FrameOperand,
  HAZARD_KINDS,
  type HazardKind,
  type InitialMapping,
  type Instruction,
  type InstructionJson,
  type InstructionOp,
  MACHINE_DEFAULTS,
  MAX_CPUS,
  MAX_PCID,
  type MachineSpec,
  PROTOCOLS,
  type Protocol,
  REGISTER_COUNT,
  type Register,
  SCENARIO_FORMAT,
  type Scenario,
  type ScenarioJson,
  WIDTHS,
  type Width,
} from './scenario.ts';

/**
 * A scenario that cannot be loaded or set up. `path` locates the problem in the file's own terms
 * (`cpus[1].program[3].addr`; `''` for the file as a whole), `reason` says what is wrong, and
 * `source` is the file name when the caller gave one. The message is one line:
 * `[source: ][path: ]reason`.
 */
export class ScenarioError extends Error {
  override readonly name = 'ScenarioError';
  constructor(
    readonly path: string,
    readonly reason: string,
    readonly source?: string,
  ) {
    super([source, path, reason].filter((part) => part !== undefined && part !== '').join(': '));
  }
}

/** The longest scenario or address-space name. */
const MAX_NAME_LENGTH = 64;
/** The largest TLB (entries per CPU). */
const MAX_TLB_ENTRIES = 65536;
/** Scenario names: usable as `smpsim run NAME` and printed unquoted in outputs. */
const SCENARIO_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/**
 * Address-space names: never integer-like (JSON objects put integer keys first, which would lose
 * declaration order) and without `.` (paths like `address_spaces.A.map[0]` stay unambiguous).
 */
const SPACE_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const REGISTER = /^r(?:[0-9]|1[0-5])$/;
const FRAME_BYTES = 4096;

type Json = Record<string, unknown>;

// ---- paths and messages -------------------------------------------------------------------------

/** The path of `key` (an object key or an array index) inside `path`. */
export function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (!SPACE_NAME.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** Levenshtein distance, for "did you mean" hints on misspelt names. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j]! + 1,
        cur[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** ` (did you mean "x"?)` when one candidate is close to `word`, else `''`. */
export function suggestion(word: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  if (best === undefined && word.length >= 3) {
    // A truncated name ("ram" for "ram_bytes"): suggest the only candidate it starts.
    const prefixed = candidates.filter((c) => c.toLowerCase().startsWith(word.toLowerCase()));
    if (prefixed.length === 1) best = prefixed[0];
  }
  return best === undefined ? '' : ` (did you mean ${JSON.stringify(best)}?)`;
}

/** A JSON value, shown in a message. */
function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The JSON type name of a value, for "expected … got …" messages. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${show(value)}`;
}

// ---- field readers ------------------------------------------------------------------------------

/** `value` as a JSON object, or a ScenarioError at `path`. */
function object(value: unknown, path: string, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ScenarioError(path, `expected ${what} (a JSON object), got ${kindOf(value)}`);
  }
  return value as Json;
}

/** `value` as a JSON array, or a ScenarioError at `path`. */
function array(value: unknown, path: string, what: string): unknown[] {
  if (!Array.isArray(value)) {
    throw new ScenarioError(path, `expected ${what} (a JSON array), got ${kindOf(value)}`);
  }
  return value;
}

/**
 * Rejects keys not in `allowed` (with a spelling hint), then keys of `required` that are absent.
 * Unknown keys are checked first, so a misspelt required field is reported as the typo it is.
 */
function checkKeys(
  obj: Json,
  path: string,
  where: string,
  allowed: readonly string[],
  required: readonly string[] = [],
): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new ScenarioError(
        childPath(path, key),
        `unknown field${suggestion(key, allowed)} (${where} takes: ${allowed.join(', ')})`,
      );
    }
  }
  for (const key of required) {
    if (obj[key] === undefined) {
      throw new ScenarioError(childPath(path, key), `missing (${where} requires it)`);
    }
  }
}

/** Runs a reader of `replay/format.ts`, turning its error into a ScenarioError at `path`. */
function viaReplay<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof ReplayFormatError) throw new ScenarioError(path, e.reason);
    throw e;
  }
}

/** A `0x…` hex string of at most 64 bits (the spelling every smpsim format accepts). */
function hexAt(obj: Json, key: string, path: string): bigint {
  return viaReplay(childPath(path, key), () => hexField(obj, key, 0));
}

/** A canonical virtual address. */
function virtAt(obj: Json, key: string, path: string): VirtAddr {
  return viaReplay(childPath(path, key), () => virtField(obj, key, 0));
}

/** A physical address below 2^52. */
function physAt(obj: Json, key: string, path: string): PhysAddr {
  return viaReplay(childPath(path, key), () => physField(obj, key, 0));
}

/** A flag word without bits 12..51. */
function flagsAt(obj: Json, key: string, path: string): PageTableFlags {
  return viaReplay(childPath(path, key), () => flagsField(obj, key, 0));
}

/** A page size name. */
function sizeAt(obj: Json, key: string, path: string): AnyPageSize {
  return viaReplay(childPath(path, key), () => sizeField(obj, key, 0));
}

/** An integer in `[min, max]`, written as a JSON number; `fallback` when absent. */
function intAt(
  obj: Json,
  key: string,
  path: string,
  min: number,
  max: number,
  what: string,
  fallback?: number,
): number {
  const raw = obj[key];
  if (raw === undefined && fallback !== undefined) return fallback;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < min || raw > max) {
    throw new ScenarioError(
      childPath(path, key),
      raw === undefined
        ? `missing: ${what}, a number ${min}..${max}`
        : `expected ${what}, a whole JSON number ${min}..${max}, got ${kindOf(raw)}`,
    );
  }
  return raw;
}

/** `true` or `false`; `fallback` when absent. */
function boolAt(obj: Json, key: string, path: string, fallback: boolean): boolean {
  const raw = obj[key];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'boolean') {
    throw new ScenarioError(childPath(path, key), `expected true or false, got ${kindOf(raw)}`);
  }
  return raw;
}

/** A string field (`missing` handled by the caller's `checkKeys`). */
function stringAt(obj: Json, key: string, path: string, what: string): string {
  const raw = obj[key];
  if (typeof raw !== 'string') {
    throw new ScenarioError(
      childPath(path, key),
      `expected ${what} (a string), got ${kindOf(raw)}`,
    );
  }
  return raw;
}

/** `r0`..`r15`. */
function registerAt(obj: Json, key: string, path: string): Register {
  const raw = obj[key];
  if (typeof raw !== 'string' || !REGISTER.test(raw)) {
    throw new ScenarioError(
      childPath(path, key),
      `${show(raw)} is not a register: use "r0".."r${REGISTER_COUNT - 1}"`,
    );
  }
  return raw as Register;
}

/** One of `names`, with a spelling hint when it is not. */
function nameIn<T extends string>(
  raw: unknown,
  names: readonly T[],
  path: string,
  what: string,
): T {
  if (typeof raw === 'string' && (names as readonly string[]).includes(raw)) return raw as T;
  const hint = typeof raw === 'string' ? suggestion(raw, names) : '';
  throw new ScenarioError(path, `unknown ${what} ${show(raw)}${hint} (known: ${names.join(', ')})`);
}

function requireAligned(value: number, align: number, path: string, what: string): void {
  if (value % align !== 0) {
    throw new ScenarioError(
      path,
      `${hex(value)} is not ${what}: it must be a multiple of ${hex(align)}`,
    );
  }
}

/** A page field aligned to `size`. */
function pageAt(obj: Json, key: string, path: string, size: AnyPageSize): VirtAddr {
  const page = virtAt(obj, key, path);
  if (page % size.bytes !== 0) {
    throw new ScenarioError(
      childPath(path, key),
      `${VirtAddr.hex(page)} is not aligned to ${size.name}: it must be a multiple of ${hex(size.bytes)}`,
    );
  }
  return page;
}

/** A written frame: aligned to `size` and wholly inside RAM (the simulator has no MMIO). */
function frameAt(
  obj: Json,
  key: string,
  path: string,
  size: AnyPageSize,
  ramBytes: number,
): PhysAddr {
  const frame = physAt(obj, key, path);
  const at = childPath(path, key);
  requireAligned(frame, size.bytes, at, `aligned to ${size.name}`);
  if (frame + size.bytes > ramBytes) {
    throw new ScenarioError(
      at,
      `the ${size.name} frame at ${hex(frame)} lies outside RAM [0x0, ${hex(ramBytes)}): frames a scenario maps or frees must lie in RAM`,
    );
  }
  return frame;
}

/** A frame operand: a register name (`"r3"`) or a written frame. */
function frameOperandAt(
  obj: Json,
  key: string,
  path: string,
  size: AnyPageSize,
  ramBytes: number,
): FrameOperand {
  const raw = obj[key];
  if (typeof raw === 'string' && /^r/i.test(raw)) return { reg: registerAt(obj, key, path) };
  return frameAt(obj, key, path, size, ramBytes);
}

// ---- the scenario -------------------------------------------------------------------------------

const TOP_KEYS = ['format', 'name', 'description', 'machine', 'address_spaces', 'cpus', 'expect'];
const MACHINE_KEYS = ['cpus', 'ram_bytes', 'tlb', 'pge', 'pcid', 'wp', 'nxe', 'protocol'];

function parseMachine(raw: unknown): MachineSpec {
  const path = 'machine';
  const obj = object(raw, path, 'the machine');
  checkKeys(obj, path, 'machine', MACHINE_KEYS, ['cpus']);
  const cpus = intAt(obj, 'cpus', path, 1, MAX_CPUS, 'the number of CPUs');
  let ramBytes: number = MACHINE_DEFAULTS.ramBytes;
  if (obj.ram_bytes !== undefined) {
    const ram = hexAt(obj, 'ram_bytes', path);
    if (ram === 0n || ram % BigInt(FRAME_BYTES) !== 0n || ram > BigInt(MAX_RAM_BYTES)) {
      throw new ScenarioError(
        'machine.ram_bytes',
        `${hex(ram)} is not a RAM size: it must be a positive multiple of 0x1000 (whole 4 KiB frames), at most ${hex(MAX_RAM_BYTES)} (4 GiB)`,
      );
    }
    ramBytes = Number(ram);
  }
  let tlb: { entries: number; ways: number } = { ...MACHINE_DEFAULTS.tlb };
  if (obj.tlb !== undefined) {
    const tlbPath = 'machine.tlb';
    const t = object(obj.tlb, tlbPath, 'the TLB geometry');
    checkKeys(t, tlbPath, 'machine.tlb', ['entries', 'ways']);
    const entries = intAt(
      t,
      'entries',
      tlbPath,
      1,
      MAX_TLB_ENTRIES,
      'the TLB entry count',
      MACHINE_DEFAULTS.tlb.entries,
    );
    const ways = intAt(
      t,
      'ways',
      tlbPath,
      1,
      MAX_TLB_ENTRIES,
      'the TLB associativity',
      MACHINE_DEFAULTS.tlb.ways,
    );
    if (entries % ways !== 0) {
      throw new ScenarioError(
        'machine.tlb.ways',
        `${ways} ways do not divide ${entries} entries: a set-associative TLB has entries / ways sets of ways entries each`,
      );
    }
    const sets = entries / ways;
    if ((sets & (sets - 1)) !== 0) {
      throw new ScenarioError(
        tlbPath,
        `${entries} entries in ${ways} ways make ${sets} sets: the set count must be a power of two (the set index is the low bits of the page number)`,
      );
    }
    tlb = { entries, ways };
  }
  return {
    cpus,
    ramBytes,
    tlb,
    pge: boolAt(obj, 'pge', path, MACHINE_DEFAULTS.pge),
    pcid: boolAt(obj, 'pcid', path, MACHINE_DEFAULTS.pcid),
    wp: boolAt(obj, 'wp', path, MACHINE_DEFAULTS.wp),
    nxe: boolAt(obj, 'nxe', path, MACHINE_DEFAULTS.nxe),
    protocol:
      obj.protocol === undefined
        ? MACHINE_DEFAULTS.protocol
        : nameIn(obj.protocol, PROTOCOLS, 'machine.protocol', 'protocol'),
  };
}

function parseMapping(raw: unknown, path: string, ramBytes: number): InitialMapping {
  const obj = object(raw, path, 'a mapping {"size", "page", "frame", "flags"}');
  const keys = ['size', 'page', 'frame', 'flags'];
  checkKeys(obj, path, 'a mapping', keys, keys);
  const size = sizeAt(obj, 'size', path);
  const page = pageAt(obj, 'page', path, size);
  const frame = frameAt(obj, 'frame', path, size, ramBytes);
  const flags = flagsAt(obj, 'flags', path);
  checkLeafFlags(flags, size, childPath(path, 'flags'));
  return { size, page, frame, flags };
}

/** HUGE_PAGE in 4 KiB leaf flags makes the crate panic (`set_frame` asserts it): never valid. */
function checkLeafFlags(flags: PageTableFlags, size: AnyPageSize, path: string): void {
  if (size.bytes === FRAME_BYTES && PageTableFlags.contains(flags, PageTableFlags.HUGE_PAGE)) {
    throw new ScenarioError(
      path,
      `${PageTableFlags.hex(flags)} has HUGE_PAGE in the flags of a 4KiB mapping: the crate panics on it (a 4 KiB leaf cannot be huge)`,
    );
  }
}

function parseAddressSpaces(raw: unknown, ramBytes: number): AddressSpaceSpec[] {
  const path = 'address_spaces';
  const obj = object(raw, path, 'the address spaces by name');
  const names = Object.keys(obj);
  if (names.length === 0) {
    throw new ScenarioError(path, 'no address space: declare at least one (every CPU needs one)');
  }
  const spaces: AddressSpaceSpec[] = [];
  const byPcid = new Map<number, string>();
  names.forEach((name, index) => {
    const spacePath = childPath(path, name);
    if (!SPACE_NAME.test(name) || name.length > MAX_NAME_LENGTH) {
      throw new ScenarioError(
        spacePath,
        `${JSON.stringify(name)} is not an address-space name: start with a letter or "_", then letters, digits, "_" or "-" (at most ${MAX_NAME_LENGTH})`,
      );
    }
    const spec = object(obj[name], spacePath, `address space ${name}`);
    checkKeys(spec, spacePath, 'an address space', ['pcid', 'map']);
    const explicit = spec.pcid !== undefined;
    const pcid = explicit ? intAt(spec, 'pcid', spacePath, 1, MAX_PCID, 'a PCID') : index + 1;
    if (!explicit && pcid > MAX_PCID) {
      throw new ScenarioError(
        spacePath,
        `its default PCID ${pcid} (its declaration position) is above ${MAX_PCID}: give it an explicit "pcid"`,
      );
    }
    const owner = byPcid.get(pcid);
    if (owner !== undefined) {
      throw explicit
        ? new ScenarioError(
            childPath(spacePath, 'pcid'),
            `PCID ${pcid} is already used by address space ${owner} (PCIDs must be unique; a space without "pcid" gets its 1-based declaration position)`,
          )
        : new ScenarioError(
            spacePath,
            `its default PCID ${pcid} (its declaration position) is already used by address space ${owner}: give ${name} an explicit, unused "pcid"`,
          );
    }
    byPcid.set(pcid, name);
    const mapPath = childPath(spacePath, 'map');
    const map = spec.map === undefined ? [] : array(spec.map, mapPath, 'a list of mappings');
    spaces.push({
      name,
      pcid,
      map: map.map((m, i) => parseMapping(m, childPath(mapPath, i), ramBytes)),
    });
  });
  return spaces;
}

/** What instruction validation needs to know about the rest of the scenario. */
interface ProgramContext {
  readonly machine: MachineSpec;
  readonly spaceNames: readonly string[];
}

/** Required and optional fields of each instruction (besides `op`). */
const OP_FIELDS: Readonly<
  Record<
    InstructionOp,
    { readonly required: readonly string[]; readonly optional: readonly string[] }
  >
> = {
  load: { required: ['addr', 'reg'], optional: ['width', 'user'] },
  store: { required: ['addr', 'value'], optional: ['width', 'user'] },
  fetch: { required: ['addr'], optional: ['user'] },
  map_to: { required: ['size', 'page', 'frame', 'flags'], optional: [] },
  unmap: { required: ['size', 'page'], optional: ['reg'] },
  update_flags: { required: ['size', 'page', 'flags'], optional: [] },
  set_flags_p4_entry: { required: ['size', 'page', 'flags'], optional: [] },
  set_flags_p3_entry: { required: ['size', 'page', 'flags'], optional: [] },
  set_flags_p2_entry: { required: ['size', 'page', 'flags'], optional: [] },
  flush: { required: [], optional: [] },
  ignore: { required: [], optional: [] },
  invlpg: { required: ['addr'], optional: [] },
  flush_all: { required: [], optional: [] },
  toggle_pge: { required: [], optional: [] },
  mov_cr3: { required: ['as'], optional: ['noflush'] },
  invpcid: { required: ['type'], optional: ['pcid', 'addr'] },
  alloc_frame: { required: ['reg'], optional: [] },
  free_frame: { required: [], optional: ['frame', 'reg'] },
  barrier: { required: ['name'], optional: [] },
  assert: { required: ['reg', 'value'], optional: [] },
};

/** Every instruction name, in the spec's table order. */
export const INSTRUCTION_OPS = Object.keys(OP_FIELDS) as readonly InstructionOp[];

/** An access width, 8 when absent. */
function widthAt(obj: Json, path: string): Width {
  const raw = obj.width;
  if (raw === undefined) return 8;
  if (!(WIDTHS as readonly unknown[]).includes(raw)) {
    throw new ScenarioError(
      childPath(path, 'width'),
      `${show(raw)} is not an access width: use 1, 2, 4 or 8 (bytes)`,
    );
  }
  return raw as Width;
}

/**
 * A data access address. Any alignment is allowed (x86 allows it), but the access must stay in
 * one 4 KiB page: a page-crossing access needs two translations, which the model does not split.
 */
function accessAt(obj: Json, path: string, width: Width): VirtAddr {
  const addr = virtAt(obj, 'addr', path);
  const offset = VirtAddr.pageOffset(addr);
  if (offset + width > FRAME_BYTES) {
    throw new ScenarioError(
      childPath(path, 'addr'),
      `${VirtAddr.hex(addr)} + ${width} bytes crosses a 4 KiB page boundary: an access must stay within one page (split it into two accesses)`,
    );
  }
  return addr;
}

function addressSpaceAt(obj: Json, key: string, path: string, ctx: ProgramContext): string {
  const name = stringAt(obj, key, path, 'an address-space name');
  if (!ctx.spaceNames.includes(name)) {
    throw new ScenarioError(
      childPath(path, key),
      `unknown address space ${JSON.stringify(name)}${suggestion(name, ctx.spaceNames)} (declared: ${ctx.spaceNames.join(', ')})`,
    );
  }
  return name;
}

function parseInstruction(raw: unknown, path: string, ctx: ProgramContext): Instruction {
  const obj = object(raw, path, 'an instruction {"op": …}');
  if (obj.op === undefined) throw new ScenarioError(childPath(path, 'op'), 'missing');
  const op = nameIn(obj.op, INSTRUCTION_OPS, childPath(path, 'op'), 'instruction');
  const fields = OP_FIELDS[op];
  checkKeys(obj, path, op, ['op', ...fields.required, ...fields.optional], fields.required);
  const ram = ctx.machine.ramBytes;
  switch (op) {
    case 'load': {
      const width = widthAt(obj, path);
      return {
        op,
        addr: accessAt(obj, path, width),
        width,
        reg: registerAt(obj, 'reg', path),
        user: boolAt(obj, 'user', path, false),
      };
    }
    case 'store': {
      const width = widthAt(obj, path);
      const addr = accessAt(obj, path, width);
      const value = hexAt(obj, 'value', path);
      if (value >= 1n << BigInt(width * 8)) {
        throw new ScenarioError(
          childPath(path, 'value'),
          `${hex(value)} does not fit in ${width} byte(s): at most ${hex((1n << BigInt(width * 8)) - 1n)} (or raise "width")`,
        );
      }
      return { op, addr, value, width, user: boolAt(obj, 'user', path, false) };
    }
    case 'fetch':
      return { op, addr: virtAt(obj, 'addr', path), user: boolAt(obj, 'user', path, false) };
    case 'map_to': {
      const size = sizeAt(obj, 'size', path);
      const page = pageAt(obj, 'page', path, size);
      const frame = frameOperandAt(obj, 'frame', path, size, ram);
      const flags = flagsAt(obj, 'flags', path);
      checkLeafFlags(flags, size, childPath(path, 'flags'));
      return { op, size, page, frame, flags };
    }
    case 'unmap': {
      const size = sizeAt(obj, 'size', path);
      const page = pageAt(obj, 'page', path, size);
      return obj.reg === undefined
        ? { op, size, page }
        : { op, size, page, reg: registerAt(obj, 'reg', path) };
    }
    case 'update_flags':
    case 'set_flags_p4_entry':
    case 'set_flags_p3_entry':
    case 'set_flags_p2_entry': {
      const size = sizeAt(obj, 'size', path);
      const page = pageAt(obj, 'page', path, size);
      return { op, size, page, flags: flagsAt(obj, 'flags', path) };
    }
    case 'flush':
    case 'ignore':
    case 'flush_all':
    case 'toggle_pge':
      return { op };
    case 'invlpg':
      return { op, addr: virtAt(obj, 'addr', path) };
    case 'mov_cr3': {
      const as = addressSpaceAt(obj, 'as', path, ctx);
      const noflush = boolAt(obj, 'noflush', path, false);
      if (noflush && !ctx.machine.pcid) {
        throw new ScenarioError(
          childPath(path, 'noflush'),
          'needs machine.pcid: true (without CR4.PCIDE, CR3 bit 63 is reserved and MOV to CR3 would #GP)',
        );
      }
      return { op, as, noflush };
    }
    case 'invpcid':
      return parseInvpcid(obj, path, ctx);
    case 'alloc_frame':
      return { op, reg: registerAt(obj, 'reg', path) };
    case 'free_frame': {
      if ((obj.frame === undefined) === (obj.reg === undefined)) {
        throw new ScenarioError(
          path,
          'free_frame takes exactly one of "frame" (a 4 KiB frame address or a register) and "reg"',
        );
      }
      const frame: FrameOperand =
        obj.reg !== undefined
          ? { reg: registerAt(obj, 'reg', path) }
          : frameOperandAt(obj, 'frame', path, Size4KiB, ram);
      return { op, frame };
    }
    case 'barrier': {
      const name = stringAt(obj, 'name', path, 'a barrier name');
      if (name === '')
        throw new ScenarioError(childPath(path, 'name'), 'a barrier name cannot be empty');
      return { op, name };
    }
    case 'assert':
      return { op, reg: registerAt(obj, 'reg', path), value: hexAt(obj, 'value', path) };
  }
}

const INVPCID_TYPES = [
  '0 (one address in one PCID)',
  '1 (one PCID)',
  '2 (all, GLOBAL too)',
  '3 (all but GLOBAL)',
];

function parseInvpcid(obj: Json, path: string, ctx: ProgramContext): Instruction {
  const type = intAt(obj, 'type', path, 0, 3, 'an INVPCID type') as 0 | 1 | 2 | 3;
  const takesPcid = type <= 1;
  for (const [key, wanted] of [
    ['pcid', takesPcid],
    ['addr', type === 0],
  ] as const) {
    if (obj[key] === undefined && wanted) {
      throw new ScenarioError(
        childPath(path, key),
        `missing (invpcid type ${INVPCID_TYPES[type]} requires it)`,
      );
    }
    if (obj[key] !== undefined && !wanted) {
      throw new ScenarioError(
        childPath(path, key),
        `invpcid type ${INVPCID_TYPES[type]} takes no ${key}: ${key === 'addr' ? 'only type 0 names an address' : 'only types 0 and 1 name a PCID'}`,
      );
    }
  }
  if (!takesPcid) return { op: 'invpcid', type: type as 2 | 3 };
  const pcid = intAt(obj, 'pcid', path, 0, MAX_PCID, 'a PCID');
  if (pcid !== 0 && !ctx.machine.pcid) {
    throw new ScenarioError(
      childPath(path, 'pcid'),
      `PCID ${pcid} needs machine.pcid: true (without CR4.PCIDE every entry is PCID 0, and INVPCID type 0/1 with another PCID would #GP)`,
    );
  }
  return type === 0
    ? { op: 'invpcid', type, pcid, addr: virtAt(obj, 'addr', path) }
    : { op: 'invpcid', type: 1, pcid };
}

function parseCpus(raw: unknown, ctx: ProgramContext): CpuSpec[] {
  const list = array(raw, 'cpus', 'one entry per CPU');
  if (list.length !== ctx.machine.cpus) {
    throw new ScenarioError(
      'cpus',
      `${list.length} CPU entr${list.length === 1 ? 'y' : 'ies'} but machine.cpus is ${ctx.machine.cpus}: give exactly one {"as", "program"} per CPU`,
    );
  }
  return list.map((entry, i) => {
    const path = childPath('cpus', i);
    const obj = object(entry, path, 'a CPU {"as", "program"}');
    checkKeys(obj, path, 'a CPU', ['as', 'program'], ['as', 'program']);
    const as = addressSpaceAt(obj, 'as', path, ctx);
    const programPath = childPath(path, 'program');
    const barriers = new Map<string, string>();
    const program = array(obj.program, programPath, 'a list of instructions').map((ins, j) => {
      const insPath = childPath(programPath, j);
      const instruction = parseInstruction(ins, insPath, ctx);
      if (instruction.op === 'barrier') {
        const first = barriers.get(instruction.name);
        if (first !== undefined) {
          throw new ScenarioError(
            childPath(insPath, 'name'),
            `barrier ${JSON.stringify(instruction.name)} already appears at ${first}: a barrier may appear once per program (name each rendezvous)`,
          );
        }
        barriers.set(instruction.name, insPath);
      }
      return instruction;
    });
    return { as, program };
  });
}

function parseExpect(raw: unknown): Partial<Record<Protocol, HazardKind[]>> {
  const obj = object(raw, 'expect', 'hazard kinds by protocol');
  for (const key of Object.keys(obj)) {
    nameIn(key, PROTOCOLS, childPath('expect', key), 'protocol');
  }
  const expect: Partial<Record<Protocol, HazardKind[]>> = {};
  for (const protocol of PROTOCOLS) {
    if (obj[protocol] === undefined) continue;
    const path = childPath('expect', protocol);
    const kinds = array(obj[protocol], path, 'a list of hazard kinds').map((k, i) =>
      nameIn(k, HAZARD_KINDS, childPath(path, i), 'hazard kind'),
    );
    kinds.forEach((k, i) => {
      if (kinds.indexOf(k) !== i) {
        throw new ScenarioError(
          childPath(path, i),
          `${JSON.stringify(k)} is listed twice (the list is a set)`,
        );
      }
    });
    expect[protocol] = HAZARD_KINDS.filter((k) => kinds.includes(k));
  }
  return expect;
}

/**
 * Validates a parsed `smpsim-scenario/1` document (the JSON value, snake_case keys and hex
 * strings) and returns the `Scenario` it describes, every default applied.
 *
 * @throws ScenarioError naming the first invalid field.
 */
export function validateScenario(obj: unknown): Scenario {
  const doc = object(obj, '', 'a smpsim-scenario/1 document');
  checkKeys(doc, '', 'a scenario', TOP_KEYS, ['format']);
  if (doc.format !== SCENARIO_FORMAT) {
    throw new ScenarioError(
      'format',
      `expected ${JSON.stringify(SCENARIO_FORMAT)}, got ${show(doc.format)}`,
    );
  }
  checkKeys(doc, '', 'a scenario', TOP_KEYS, ['name', 'machine', 'address_spaces', 'cpus']);
  const name = stringAt(doc, 'name', '', 'the scenario name');
  if (!SCENARIO_NAME.test(name) || name.length > MAX_NAME_LENGTH) {
    throw new ScenarioError(
      'name',
      `${JSON.stringify(name)} is not a scenario name: letters, digits, ".", "_" and "-", starting with a letter or digit (at most ${MAX_NAME_LENGTH})`,
    );
  }
  const description =
    doc.description === undefined ? '' : stringAt(doc, 'description', '', 'a description');
  const machine = parseMachine(doc.machine);
  const addressSpaces = parseAddressSpaces(doc.address_spaces, machine.ramBytes);
  const cpus = parseCpus(doc.cpus, { machine, spaceNames: addressSpaces.map((s) => s.name) });
  const scenario: Scenario = { name, description, machine, addressSpaces, cpus };
  return doc.expect === undefined ? scenario : { ...scenario, expect: parseExpect(doc.expect) };
}

// ---- text ---------------------------------------------------------------------------------------

/** `at line L, column C` for a character offset. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return `line ${line}, column ${offset - before.lastIndexOf('\n')}`;
}

/**
 * The first object key that appears twice in the same object of (valid) JSON text, with its path.
 * `JSON.parse` keeps the last one silently, which would drop, say, a whole address space.
 */
function findDuplicateKey(text: string): { path: string; key: string } | undefined {
  type Open =
    | { kind: 'object'; path: string; keys: Set<string>; key: string; expectKey: boolean }
    | { kind: 'array'; path: string; index: number };
  const stack: Open[] = [];
  const valuePath = (): string => {
    const top = stack[stack.length - 1];
    if (top === undefined) return '';
    return top.kind === 'object' ? childPath(top.path, top.key) : childPath(top.path, top.index);
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.kind === 'object' && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return { path: childPath(top.path, key), key };
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push({ kind: 'object', path: valuePath(), keys: new Set(), key: '', expectKey: true });
    } else if (c === '[') {
      stack.push({ kind: 'array', path: valuePath(), index: 0 });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      const top = stack[stack.length - 1]!;
      if (top.kind === 'object') top.expectKey = true;
      else top.index++;
    }
  }
  return undefined;
}

/**
 * Parses and validates the text of a `smpsim-scenario/1` JSON file. `sourceName` (a file name)
 * prefixes every error message.
 *
 * @throws ScenarioError for bad JSON (with line and column), a key repeated in one object, or any
 * invalid field (see `validateScenario`).
 */
export function loadScenario(text: string, sourceName?: string): Scenario {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  try {
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (e) {
      const message = (e as Error).message;
      const position = /at position (\d+)/.exec(message);
      const where = position ? ` at ${lineColumn(body, Number(position[1]))}` : '';
      throw new ScenarioError('', `not valid JSON${where}: ${message}`);
    }
    const duplicate = findDuplicateKey(body);
    if (duplicate !== undefined) {
      throw new ScenarioError(
        duplicate.path,
        `the key ${JSON.stringify(duplicate.key)} appears twice in the same object (JSON would silently keep only the last)`,
      );
    }
    return validateScenario(value);
  } catch (e) {
    if (e instanceof ScenarioError && sourceName !== undefined) {
      throw new ScenarioError(e.path, e.reason, sourceName);
    }
    throw e;
  }
}

// ---- back to the file shape ---------------------------------------------------------------------

function frameJson(frame: FrameOperand): string {
  return typeof frame === 'number' ? hex(frame) : frame.reg;
}

/** The file form of one instruction, every defaulted field written out. */
export function instructionToJson(ins: Instruction): InstructionJson {
  switch (ins.op) {
    case 'load':
      return {
        op: ins.op,
        addr: VirtAddr.hex(ins.addr),
        width: ins.width,
        reg: ins.reg,
        user: ins.user,
      };
    case 'store':
      return {
        op: ins.op,
        addr: VirtAddr.hex(ins.addr),
        value: hex(ins.value),
        width: ins.width,
        user: ins.user,
      };
    case 'fetch':
      return { op: ins.op, addr: VirtAddr.hex(ins.addr), user: ins.user };
    case 'map_to':
      return {
        op: ins.op,
        size: ins.size.name,
        page: VirtAddr.hex(ins.page),
        frame: frameJson(ins.frame),
        flags: PageTableFlags.hex(ins.flags),
      };
    case 'unmap': {
      const base = { op: ins.op, size: ins.size.name, page: VirtAddr.hex(ins.page) };
      return ins.reg === undefined ? base : { ...base, reg: ins.reg };
    }
    case 'update_flags':
    case 'set_flags_p4_entry':
    case 'set_flags_p3_entry':
    case 'set_flags_p2_entry':
      return {
        op: ins.op,
        size: ins.size.name,
        page: VirtAddr.hex(ins.page),
        flags: PageTableFlags.hex(ins.flags),
      };
    case 'flush':
    case 'ignore':
    case 'flush_all':
    case 'toggle_pge':
      return { op: ins.op };
    case 'invlpg':
      return { op: ins.op, addr: VirtAddr.hex(ins.addr) };
    case 'mov_cr3':
      return { op: ins.op, as: ins.as, noflush: ins.noflush };
    case 'invpcid':
      if (ins.type === 0) {
        return { op: ins.op, type: 0, pcid: ins.pcid, addr: VirtAddr.hex(ins.addr) };
      }
      return ins.type === 1
        ? { op: ins.op, type: 1, pcid: ins.pcid }
        : { op: ins.op, type: ins.type };
    case 'alloc_frame':
      return { op: ins.op, reg: ins.reg };
    case 'free_frame':
      return typeof ins.frame === 'number'
        ? { op: ins.op, frame: hex(ins.frame) }
        : { op: ins.op, reg: ins.frame.reg };
    case 'barrier':
      return { op: ins.op, name: ins.name };
    case 'assert':
      return { op: ins.op, reg: ins.reg, value: hex(ins.value) };
  }
}

/**
 * The complete file for a scenario: every default written out, PCIDs explicit. Loading it back
 * (`validateScenario`, or `loadScenario` of its `JSON.stringify`) gives a deep-equal `Scenario`.
 */
export function scenarioToJson(s: Scenario): ScenarioJson {
  const m = s.machine;
  const doc: ScenarioJson = {
    format: SCENARIO_FORMAT,
    name: s.name,
    description: s.description,
    machine: {
      cpus: m.cpus,
      ram_bytes: hex(m.ramBytes),
      tlb: { entries: m.tlb.entries, ways: m.tlb.ways },
      pge: m.pge,
      pcid: m.pcid,
      wp: m.wp,
      nxe: m.nxe,
      protocol: m.protocol,
    },
    address_spaces: Object.fromEntries(
      s.addressSpaces.map((space) => [
        space.name,
        {
          pcid: space.pcid,
          map: space.map.map((e) => ({
            size: e.size.name,
            page: VirtAddr.hex(e.page),
            frame: hex(e.frame),
            flags: PageTableFlags.hex(e.flags),
          })),
        },
      ]),
    ),
    cpus: s.cpus.map((cpu) => ({ as: cpu.as, program: cpu.program.map(instructionToJson) })),
  };
  if (s.expect !== undefined) {
    doc.expect = Object.fromEntries(
      PROTOCOLS.filter((p) => s.expect![p] !== undefined).map((p) => [p, [...s.expect![p]!]]),
    );
  }
  return doc;
}
