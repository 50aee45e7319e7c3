// Single-step a TLB shootdown on worker threads: CPU 1 caches a page, CPU 0 unmaps it and
// flushes under sync-ipi, and the IPI lands at CPU 1's next instruction boundary.
import { hex, Machine, type StepReport, scenario, WorkerHost } from '../src/index.ts';

const PAGE = 0x40_0000;
const OTHER = 0x40_1000;
const s = scenario('step-a-shootdown')
  .machine({ cpus: 2, protocol: 'sync-ipi' })
  .addressSpace('A', (as) => {
    as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE');
    as.map4k(OTHER, 0x20_1000, 'PRESENT|WRITABLE');
  })
  .cpu('A', (p) => p.unmap('4KiB', PAGE, 'r1').flush())
  .cpu('A', (p) => p.load(PAGE, 'r0').load(OTHER, 'r1'))
  .build();

const machine = Machine.fromScenario(s);
const host = new WorkerHost(machine, { startPaused: true }); // one thread per CPU, all parked
const running = host.start();
await host.whenStarted();

function show(what: string, r: StepReport): void {
  const tlb = (r.state.tlb ?? []).map((e) => hex(e.pageStart)).join(', ');
  console.log(`${what.padEnd(28)} ${r.stopped.padEnd(8)} pc ${r.state.pc}  TLB [${tlb}]`);
}
show('cpu 1: load PAGE', await host.step(1));
show('cpu 0: unmap PAGE', await host.step(0));
show('cpu 0: flush (IPI to cpu 1)', await host.step(0));
show('cpu 0: again (cpu 1 parked)', await host.step(0));
show('cpu 1: take the IPI, load', await host.step(1));
show('cpu 0: flush returns', await host.step(0));
await host.resume();
const run = await running;
console.log(run.cpus.map((c) => `cpu ${c.cpu}: ${c.end} after ${c.steps} steps`).join('; '));
console.log(
  `IPIs to cpu 1: ${machine.shootdown.requestsTo(1)}, acks to cpu 0: ${machine.shootdown.acksTo(0)}`,
);
