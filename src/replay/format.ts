/**
 * Reader of the `mapper-replay/1` input format (`shared/spec/mapper-replay.md`): JSON Lines, a
 * header then one Mapper operation per line, validated completely before anything runs.
 */

import { hex, PhysAddr, parseHex, VirtAddr } from '../addr.ts';
import { MAX_RAM_BYTES } from '../memory/physical-memory.ts';
import { PageTableFlags } from '../paging/flags.ts';
import { type AnyPageSize, pageSizeByName } from '../paging/page-size.ts';

/** The header line: RAM size, the level-4 table and the bump allocator's range. */
export interface ReplayHeader {
  readonly ramBytes: number;
  readonly p4: PhysAddr;
  readonly allocStart: PhysAddr;
  readonly allocEnd: PhysAddr;
}

/** The operation names of the format, each a crate call (see `OPS` in `run.ts`). */
export type ReplayOpName =
  | 'map_to'
  | 'map_to_with_table_flags'
  | 'identity_map'
  | 'unmap'
  | 'update_flags'
  | 'set_flags_p4_entry'
  | 'set_flags_p3_entry'
  | 'set_flags_p2_entry'
  | 'translate_page'
  | 'translate'
  | 'translate_addr';

/** One validated operation line. Fields absent for an op are undefined. */
export interface ReplayOp {
  /** 1-based line number in the input. */
  readonly line: number;
  readonly op: ReplayOpName;
  readonly size?: AnyPageSize;
  readonly page?: VirtAddr;
  readonly frame?: PhysAddr;
  readonly flags?: PageTableFlags;
  readonly parentFlags?: PageTableFlags;
  readonly addr?: VirtAddr;
}

/** A parsed input file. */
export interface ReplayFile {
  readonly header: ReplayHeader;
  readonly ops: readonly ReplayOp[];
}

/** Malformed input: names the 1-based line and the field (or `-` for the line as a whole). */
export class ReplayFormatError extends Error {
  override readonly name = 'ReplayFormatError';
  constructor(
    readonly line: number,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`line ${line}: field '${field}': ${reason}`);
  }
}

/** The fields each operation takes, in the spec's order; every one is required. */
export const OP_FIELDS: Readonly<Record<ReplayOpName, readonly string[]>> = {
  map_to: ['size', 'page', 'frame', 'flags'],
  map_to_with_table_flags: ['size', 'page', 'frame', 'flags', 'parent_flags'],
  identity_map: ['size', 'frame', 'flags'],
  unmap: ['size', 'page'],
  update_flags: ['size', 'page', 'flags'],
  set_flags_p4_entry: ['size', 'page', 'flags'],
  set_flags_p3_entry: ['size', 'page', 'flags'],
  set_flags_p2_entry: ['size', 'page', 'flags'],
  translate_page: ['size', 'page'],
  translate: ['addr'],
  translate_addr: ['addr'],
};

type Json = Record<string, unknown>;

/** Reads a `0x…` string field as a bigint, or throws naming the line and field. */
export function hexField(obj: Json, field: string, line: number): bigint {
  const raw = obj[field];
  if (raw === undefined) throw new ReplayFormatError(line, field, 'missing');
  if (typeof raw !== 'string') {
    throw new ReplayFormatError(
      line,
      field,
      `expected a hex string like "0x1000", got ${JSON.stringify(raw)}`,
    );
  }
  if (/^0x[0-9a-fA-F]+$/.test(raw) && raw !== raw.toLowerCase()) {
    throw new ReplayFormatError(
      line,
      field,
      `${JSON.stringify(raw)}: hex digits must be lowercase`,
    );
  }
  const value = parseHex(raw);
  if (value === undefined) {
    throw new ReplayFormatError(
      line,
      field,
      `${JSON.stringify(raw)} is not a 0x-prefixed hex number of at most 64 bits`,
    );
  }
  return value;
}

/** A canonical virtual address field. */
export function virtField(obj: Json, field: string, line: number): VirtAddr {
  const r = VirtAddr.tryNew(hexField(obj, field, line));
  if (!r.ok) throw new ReplayFormatError(line, field, r.error.message);
  return r.value;
}

/** A physical address field (< 2^52). */
export function physField(obj: Json, field: string, line: number): PhysAddr {
  const r = PhysAddr.tryNew(hexField(obj, field, line));
  if (!r.ok) throw new ReplayFormatError(line, field, r.error.message);
  return r.value;
}

/** A flag word field: no bit of 12..51 may be set. */
export function flagsField(obj: Json, field: string, line: number): PageTableFlags {
  const r = PageTableFlags.fromBits(hexField(obj, field, line));
  if (!r.ok) throw new ReplayFormatError(line, field, r.error.message);
  return r.value;
}

/** A page size field: `"4KiB"`, `"2MiB"` or `"1GiB"`. */
export function sizeField(obj: Json, field: string, line: number): AnyPageSize {
  const raw = obj[field];
  if (raw === undefined) throw new ReplayFormatError(line, field, 'missing');
  const size = typeof raw === 'string' ? pageSizeByName(raw) : undefined;
  if (size === undefined) {
    throw new ReplayFormatError(
      line,
      field,
      `${JSON.stringify(raw)} is not a page size: use "4KiB", "2MiB" or "1GiB"`,
    );
  }
  return size;
}

/** Throws unless `value` is a multiple of `align`; `shown` is the value as the input wrote it. */
function requireAligned(
  value: number,
  align: number,
  line: number,
  field: string,
  what: string,
  shown: string = hex(value),
): void {
  if (value % align !== 0) {
    throw new ReplayFormatError(
      line,
      field,
      `${shown} is not ${what}: it must be a multiple of ${hex(align)}`,
    );
  }
}

function parseJsonObject(text: string, line: number): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ReplayFormatError(line, '-', `not valid JSON (${(e as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ReplayFormatError(line, '-', 'expected a JSON object');
  }
  return value as Json;
}

function rejectUnknown(obj: Json, allowed: readonly string[], line: number): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new ReplayFormatError(
        line,
        key,
        `unknown field (this line takes: ${allowed.join(', ')})`,
      );
    }
  }
}

function parseHeader(text: string): ReplayHeader {
  const obj = parseJsonObject(text, 1);
  if (obj.format !== 'mapper-replay/1') {
    throw new ReplayFormatError(
      1,
      'format',
      `expected "mapper-replay/1", got ${JSON.stringify(obj.format)}`,
    );
  }
  rejectUnknown(obj, ['format', 'ram_bytes', 'p4', 'alloc'], 1);
  const ram = hexField(obj, 'ram_bytes', 1);
  if (ram > BigInt(MAX_RAM_BYTES)) {
    throw new ReplayFormatError(
      1,
      'ram_bytes',
      `${hex(ram)} is too large: simulated RAM is at most ${hex(MAX_RAM_BYTES)} bytes (4 GiB, the longest typed array)`,
    );
  }
  if (ram === 0n || ram % 4096n !== 0n) {
    throw new ReplayFormatError(
      1,
      'ram_bytes',
      `${hex(ram)} is not a positive multiple of 0x1000 (whole 4 KiB frames)`,
    );
  }
  const ramBytes = Number(ram);
  const p4 = physField(obj, 'p4', 1);
  requireAligned(p4, 4096, 1, 'p4', '4 KiB aligned');
  if (p4 + 4096 > ramBytes) {
    throw new ReplayFormatError(
      1,
      'p4',
      `${hex(p4)}: the level-4 table must lie inside RAM [0x0, ${hex(ramBytes)})`,
    );
  }
  const alloc = obj.alloc;
  if (typeof alloc !== 'object' || alloc === null || Array.isArray(alloc)) {
    throw new ReplayFormatError(1, 'alloc', 'expected an object {"start":"0x…","end":"0x…"}');
  }
  // Re-keyed so that every error names the nested field as `alloc.start` / `alloc.end`.
  const a = Object.fromEntries(Object.entries(alloc as Json).map(([k, v]) => [`alloc.${k}`, v]));
  rejectUnknown(a, ['alloc.start', 'alloc.end'], 1);
  const allocStart = physField(a, 'alloc.start', 1);
  const allocEnd = physField(a, 'alloc.end', 1);
  requireAligned(allocStart, 4096, 1, 'alloc.start', '4 KiB aligned');
  requireAligned(allocEnd, 4096, 1, 'alloc.end', '4 KiB aligned');
  if (allocEnd < allocStart) {
    throw new ReplayFormatError(
      1,
      'alloc.end',
      `${hex(allocEnd)} is below alloc.start ${hex(allocStart)}`,
    );
  }
  return { ramBytes, p4, allocStart, allocEnd };
}

function parseOp(text: string, line: number): ReplayOp {
  const obj = parseJsonObject(text, line);
  const name = obj.op;
  if (name === undefined) throw new ReplayFormatError(line, 'op', 'missing');
  if (typeof name !== 'string' || !Object.hasOwn(OP_FIELDS, name)) {
    throw new ReplayFormatError(
      line,
      'op',
      `unknown operation ${JSON.stringify(name)} (known: ${Object.keys(OP_FIELDS).join(', ')})`,
    );
  }
  const op = name as ReplayOpName;
  const fields = OP_FIELDS[op];
  rejectUnknown(obj, ['op', ...fields], line);
  const size = fields.includes('size') ? sizeField(obj, 'size', line) : undefined;
  let page: VirtAddr | undefined;
  if (fields.includes('page')) {
    page = virtField(obj, 'page', line);
    requireAligned(page, size!.bytes, line, 'page', `aligned to ${size!.name}`, VirtAddr.hex(page));
  }
  let frame: PhysAddr | undefined;
  if (fields.includes('frame')) {
    frame = physField(obj, 'frame', line);
    requireAligned(frame, size!.bytes, line, 'frame', `aligned to ${size!.name}`);
  }
  return {
    line,
    op,
    size,
    page,
    frame,
    flags: fields.includes('flags') ? flagsField(obj, 'flags', line) : undefined,
    parentFlags: fields.includes('parent_flags')
      ? flagsField(obj, 'parent_flags', line)
      : undefined,
    addr: fields.includes('addr') ? virtField(obj, 'addr', line) : undefined,
  };
}

/**
 * Parses and validates a whole replay input. Blank lines are skipped (but still counted for line
 * numbers); anything else malformed throws `ReplayFormatError` naming the line and field.
 */
export function parseReplay(text: string): ReplayFile {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const first = lines.findIndex((l) => l.trim() !== '');
  if (first !== 0) {
    throw new ReplayFormatError(
      first < 0 ? 1 : first + 1,
      '-',
      'the first line must be the mapper-replay/1 header',
    );
  }
  const header = parseHeader(lines[0]!.replace(/\r$/, ''));
  const ops: ReplayOp[] = [];
  for (let i = 1; i < lines.length; i++) {
    const text = lines[i]!.replace(/\r$/, '');
    if (text.trim() === '') continue;
    ops.push(parseOp(text, i + 1));
  }
  return { header, ops };
}
