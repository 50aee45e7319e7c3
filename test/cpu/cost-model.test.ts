/**
 * The cost model: the calibration against Amit 2019 (a ratio computed from modeled-clock runs of
 * the operation, not from the constants), the per-page charge of remote requests, and the
 * override parsers' acceptance and one-line errors.
 */

import { describe, expect, it } from 'vitest';
import { calibrate } from '../../src/bench/calibration.ts';
import { runModeledClock } from '../../src/bench/modeled-clock.ts';
import { shootdownProgram } from '../../src/bench/shootdown-program.ts';
import {
  CALIBRATION,
  COST_MODEL_KEYS,
  CostModelError,
  cyclesToNs,
  DEFAULT_COST_MODEL,
  parseCostAssignment,
  parseCostOverrides,
  withCostOverrides,
} from '../../src/cpu/cost-model.ts';
import { Machine } from '../../src/smp/machine.ts';
import { TraceKind } from '../../src/trace/record.ts';

describe('calibration (Amit 2019: 661 ns alone, 1,436 ns with one remote CPU)', () => {
  it('the modeled sync-ipi 1-page shootdown reproduces the ratio within 10%', () => {
    const c = calibrate(DEFAULT_COST_MODEL);
    expect(CALIBRATION.ratio).toBeCloseTo(1436 / 661, 10);
    expect(Math.abs(c.ratio / CALIBRATION.ratio - 1)).toBeLessThanOrEqual(0.1);
    expect(c.within).toBe(true);
    // The absolute figures too, at the model's clock.
    expect(c.localNs).toBeCloseTo(661, -1);
    expect(c.remoteNs).toBeCloseTo(1436, -1);
  });

  it('the ratio comes from the runs: the remote entries move it, and a run measures it', () => {
    const slower = calibrate(withCostOverrides(DEFAULT_COST_MODEL, { ipiReceive: 5000 }));
    expect(slower.ratio).toBeGreaterThan(calibrate(DEFAULT_COST_MODEL).ratio + 1);
    expect(slower.within).toBe(false);
    // The same operation by hand: CPU 0's clock from its unmap to the free after the flush.
    const ops = [1, 2].map((cpus) => {
      const prog = shootdownProgram({ cpus, pages: [1], rounds: [2], lazyTlb: false, touch: 1 });
      const run = runModeledClock(Machine.fromScenario(prog.scenario, { protocol: 'sync-ipi' }), {
        watch: [0],
      });
      const a = run.arrivals.get(0)!;
      const m = prog.marks[1]!;
      return a[m.opEnd]! - a[m.start]!;
    });
    const c = calibrate(DEFAULT_COST_MODEL);
    expect(ops).toEqual([c.localCycles, c.remoteCycles]);
  });

  it('the target is charged invlpg + flushPage per listed page, and the interrupt', () => {
    const prog = shootdownProgram({ cpus: 2, pages: [3], rounds: [1], lazyTlb: false, touch: 3 });
    const m = Machine.fromScenario(prog.scenario, { protocol: 'batched' });
    const run = runModeledClock(m);
    const send = run.records.find((r) => r.kind === TraceKind.IpiSend)!;
    const receive = run.records.find((r) => r.kind === TraceKind.IpiReceive)!;
    expect(receive.c).toBe(3);
    const c = DEFAULT_COST_MODEL;
    // Delivered at CPU 0's clock after the step that sent it; the handler adds the rest.
    expect(run.stepCycles[receive.step]! - run.stepCycles[send.step]!).toBe(
      3 * (c.invlpg + c.flushPage) + c.ipiReceive,
    );
  });
});

describe('DEFAULT_COST_MODEL', () => {
  it('is frozen, lists every key, and holds non-negative numbers (clockGhz positive)', () => {
    expect(Object.isFrozen(DEFAULT_COST_MODEL)).toBe(true);
    expect(COST_MODEL_KEYS).toEqual(Object.keys(DEFAULT_COST_MODEL));
    for (const k of COST_MODEL_KEYS) expect(DEFAULT_COST_MODEL[k]).toBeGreaterThanOrEqual(0);
    expect(DEFAULT_COST_MODEL.clockGhz).toBeGreaterThan(0);
    expect(cyclesToNs(DEFAULT_COST_MODEL, 3000)).toBe(1000);
  });
});

describe('parseCostOverrides (--costs FILE)', () => {
  it('takes an object of entries', () => {
    expect(parseCostOverrides('{"ipiSend": 500, "clockGhz": 2.3}', 'f.json')).toEqual({
      ipiSend: 500,
      clockGhz: 2.3,
    });
    expect(parseCostOverrides('{}', 'f.json')).toEqual({});
  });

  it.each([
    ['{"ipiSnd": 5}', 'f.json: "ipiSnd" is not a cost entry (did you mean "ipiSend"?)'],
    ['{"ipiSend": -1}', 'f.json: ipiSend = -1 is not a non-negative number of cycles'],
    ['{"ipiSend": "5"}', 'f.json: ipiSend = "5" is not a non-negative number of cycles'],
    ['{"clockGhz": 0}', 'f.json: clockGhz = 0 is not a positive number of GHz'],
    [
      '[1]',
      'f.json: expected a JSON object of cost entries, e.g. {"ipiReceive": 2000}, got an array',
    ],
    ['null', 'f.json: expected a JSON object'],
    ['{"ipiSend": 5', 'f.json: not JSON'],
  ])('%s -> %s', (text, message) => {
    expect(() => parseCostOverrides(text, 'f.json')).toThrow(CostModelError);
    expect(() => parseCostOverrides(text, 'f.json')).toThrow(message);
  });
});

describe('parseCostAssignment (--cost key=value)', () => {
  it('takes KEY=VALUE', () => {
    expect(parseCostAssignment('ipiSend=500')).toEqual({ ipiSend: 500 });
    expect(parseCostAssignment(' invlpg = 120.5 ')).toEqual({ invlpg: 120.5 });
  });

  it.each([
    ['ipiSend', '--cost ipiSend: expected KEY=VALUE, e.g. ipiSend=500'],
    ['=5', '--cost =5: expected KEY=VALUE'],
    ['ipisend=5', '"ipisend" is not a cost entry (did you mean "ipiSend"?)'],
    ['ipiSend=abc', '--cost ipiSend=abc: ipiSend = "abc" is not a non-negative number of cycles'],
    ['ipiSend=', '--cost ipiSend=: ipiSend = "" is not a non-negative number'],
    ['ipiSend=-2', 'ipiSend = -2 is not a non-negative number of cycles'],
  ])('%s -> %s', (text, message) => {
    expect(() => parseCostAssignment(text)).toThrow(message);
  });
});

describe('withCostOverrides', () => {
  it('applies layers in order, later ones winning, and leaves the base alone', () => {
    const m = withCostOverrides(DEFAULT_COST_MODEL, { ipiSend: 1, invlpg: 2 }, { ipiSend: 3 });
    expect(m.ipiSend).toBe(3);
    expect(m.invlpg).toBe(2);
    expect(m.ipiAck).toBe(DEFAULT_COST_MODEL.ipiAck);
    expect(Object.isFrozen(m)).toBe(true);
    expect(DEFAULT_COST_MODEL.ipiSend).toBe(300);
  });
});
