/**
 * `npm run tour`: a tour of the paging core and of one stale TLB hit. Builds an address space in simulated RAM with the Mapper,
 * maps 4 KiB, 2 MiB and 1 GiB pages, prints each translation with the entries its walk reads,
 * shows a dropped `MapperFlush` being detected, checks the bundled replay samples, and runs two
 * CPUs to show a stale TLB hit after an unmap that was flushed only locally.
 */

import { fileURLToPath } from 'node:url';
import { hex, PhysAddr, VirtAddr } from './addr.ts';
import { resolveScenario } from './cli/run.ts';
import type { Cpu } from './cpu/cpu.ts';
import { PhysicalMemory } from './memory/physical-memory.ts';
import { BitmapFrameAllocator } from './paging/bitmap-frame-allocator.ts';
import { PageTableFlags } from './paging/flags.ts';
import { PhysFrame } from './paging/frame.ts';
import { OffsetPageTable } from './paging/mapper/offset-page-table.ts';
import { Page } from './paging/page.ts';
import { type AnyPageSize, Size1GiB, Size2MiB, Size4KiB } from './paging/page-size.ts';
import { traceWalk } from './paging/walk-trace.ts';
import { checkDirectory } from './replay/check.ts';
import { formatSchedule, runDeterministic } from './smp/hosts/deterministic.ts';
import { Machine } from './smp/machine.ts';
import { TraceKind } from './trace/record.ts';

const { PRESENT, WRITABLE, USER_ACCESSIBLE, GLOBAL, NO_EXECUTE } = PageTableFlags;
const log = (s = '') => process.stdout.write(`${s}\n`);

const RAM_BYTES = 16 * 2 ** 20;
const memory = new PhysicalMemory(RAM_BYTES);
// Frames 0..1 MiB hold page tables; the shared bitmap allocator hands out the lowest free frame.
const allocator = BitmapFrameAllocator.create({ start: 0x1000, end: 0x10_0000 });
const p4 = PhysFrame.fromStartAddressUnchecked(PhysAddr.zero, Size4KiB);
const mapper = new OffsetPageTable(memory, p4);

log(
  `smpsim — ${RAM_BYTES / 2 ** 20} MiB of simulated RAM in one SharedArrayBuffer; level-4 table at ${hex(p4.startAddress)}`,
);
log();
log("1. Mapping pages with the x86_64 crate's Mapper (OffsetPageTable::map_to):");

interface Mapping {
  readonly what: string;
  readonly page: Page<AnyPageSize>;
  readonly frame: PhysFrame<AnyPageSize>;
  readonly flags: PageTableFlags;
}
const v = (a: bigint | number) => VirtAddr.new(a);
const p = (a: number) => PhysAddr.new(a);
const mappings: Mapping[] = [
  {
    what: 'user code, 4 KiB',
    page: Page.containingAddress(v(0x40_0000), Size4KiB),
    frame: PhysFrame.containingAddress(p(0x20_0000), Size4KiB),
    flags: PageTableFlags.of(PRESENT, USER_ACCESSIBLE),
  },
  {
    what: 'user heap, 2 MiB',
    page: Page.containingAddress(v(0x4000_0000), Size2MiB),
    frame: PhysFrame.containingAddress(p(0x40_0000), Size2MiB),
    flags: PageTableFlags.of(PRESENT, WRITABLE, USER_ACCESSIBLE, NO_EXECUTE),
  },
  {
    what: 'kernel, 4 KiB GLOBAL',
    page: Page.containingAddress(v(0xffff_8000_0000_1000n), Size4KiB),
    frame: PhysFrame.containingAddress(p(0x30_0000), Size4KiB),
    flags: PageTableFlags.of(PRESENT, WRITABLE, GLOBAL),
  },
  {
    what: 'MMIO window, 1 GiB',
    page: Page.containingAddress(v(0xffff_ff80_0000_0000n), Size1GiB),
    frame: PhysFrame.containingAddress(p(0xfc_0000_0000), Size1GiB),
    flags: PageTableFlags.of(PRESENT, WRITABLE, NO_EXECUTE),
  },
];
for (const m of mappings) {
  const r = mapper.mapTo(m.page, m.frame, m.flags, allocator);
  if (!r.ok) throw new Error(`demo mapping failed: ${r.error.kind}`);
  // One CPU and no TLB yet: the obligation is settled by invalidating nothing.
  r.value.flush();
  log(
    `   ${m.what.padEnd(22)} ${String(m.page).padEnd(36)} -> ${String(m.frame).padEnd(30)} ${PageTableFlags.names(m.flags)}`,
  );
}
log(`   page-table frames taken from the allocator: ${allocator.allocatedFrames().length}`);

log();
log('2. Translating addresses; every entry the 4-level walk reads:');
const probes = [
  0x40_0123n,
  0x4012_3456n,
  0xffff_8000_0000_1abcn,
  0xffff_ff80_1234_5678n,
  0x50_0000n,
];
for (const a of probes) {
  const addr = VirtAddr.new(a);
  const t = mapper.translate(addr);
  const result =
    t.kind === 'Mapped'
      ? `-> ${hex(t.frame.startAddress + t.offset)} (${t.frame.size.name} frame ${hex(t.frame.startAddress)} + offset ${hex(t.offset)})`
      : '-> not mapped';
  log(`   ${VirtAddr.hex(addr)} ${result}`);
  for (const s of traceWalk(memory, p4.startAddress, addr)) {
    log(
      `      P${s.level}[${String(s.index).padStart(3)}] @ ${hex(s.table + s.index * 8).padEnd(8)} = ${s.entry}  => ${s.outcome}`,
    );
  }
}

log();
log('3. MapperFlush is #[must_use] in Rust; here the flush ledger catches one that is dropped:');
const heap = Page.containingAddress(v(0x4000_0000), Size2MiB);
const downgraded = mapper.updateFlags(
  heap,
  PageTableFlags.of(PRESENT, USER_ACCESSIBLE, NO_EXECUTE),
);
if (!downgraded.ok) throw new Error('update_flags failed');
// Deliberately neither flush() nor ignore(): another CPU could keep writing through its TLB.
const pending = mapper.flushLedger.pending();
log(`   update_flags(${heap}, read-only) returned a MapperFlush; neither flushed nor ignored`);
log(
  `   ledger: ${mapper.flushLedger.created} created, ${mapper.flushLedger.flushed} flushed, ${mapper.flushLedger.ignored} ignored, ${pending.length} pending -> dropped flush for ${pending.map((f) => ('page' in f ? String(f.page()) : 'all')).join(', ')}`,
);
downgraded.value.flush();

log();
log('4. Conformance with the Rust crate: the bundled mapper-replay/1 samples, byte for byte:');
const samples = fileURLToPath(new URL('../test/fixtures/replay-samples/', import.meta.url));
const verdicts = checkDirectory(samples);
for (const verdict of verdicts)
  log(
    `   ${verdict.passed ? 'PASS' : 'FAIL'} ${verdict.name}${verdict.detail ? `: ${verdict.detail}` : ''}`,
  );
const failed = verdicts.filter((x) => !x.passed).length;
log(`   ${verdicts.length - failed} passed, ${failed} failed`);

log();
log('5. Two CPUs with private TLBs (deterministic host, protocol none = local invlpg only):');
const machine = Machine.fromScenario(resolveScenario('unmap-without-shootdown'), {
  protocol: 'none',
});
const run = runDeterministic(machine, { seed: 1 });
const [cpu0, cpu1] = machine.cpus as [Cpu, Cpu];
const space = machine.setup.spaces.get('A')!;
const stalePage = VirtAddr.new(0x40_0000);
const lastLoad = run.records.filter((r) => r.cpu === 1 && r.kind === TraceKind.TlbHit).at(-1);
log(
  `   cpu0 unmapped ${VirtAddr.hex(stalePage)} and flushed: its own TLB entry is gone (${cpu0.stats.evictions} evicted)`,
);
log(`   the page tables now say: ${space.mapper.translate(stalePage).kind}`);
log(
  `   cpu1 loads ${VirtAddr.hex(stalePage)} again: ${lastLoad ? `TLB HIT on its stale entry -> frame ${hex(lastLoad.c)}` : 'TLB miss'}, r1 = ${hex(cpu1.register(1))}`,
);
log('   -> a stale translation: the unmapped frame is still readable (and writable) from cpu1.');
for (const protocol of ['sync-ipi', 'batched', 'lazy', 'broadcast']) {
  const m = Machine.fromScenario(resolveScenario('unmap-without-shootdown'), { protocol });
  const r = runDeterministic(m, { seed: 1 });
  const sent = r.records.filter((x) => x.kind === TraceKind.IpiSend).length;
  const c1 = m.cpus[1] as Cpu;
  log(
    `   same run under ${protocol.padEnd(9)}: ${sent} request(s) sent; cpu1 ${c1.status === 'faulted' ? `faults (#PF ${hex(c1.faults[0]!.addr)}): its entry was shot down` : `is ${c1.status}, r1 = ${hex(c1.register(1))}`}`,
  );
}
log(
  `   replay this interleaving: ./bin/smpsim.js run unmap-without-shootdown --protocol none --schedule '${formatSchedule(run.schedule)}'`,
);

log();
log('Next: CPUs on worker threads and the hazard checker (see the README status).');
process.exitCode = failed > 0 ? 1 : 0;
