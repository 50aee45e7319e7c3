/**
 * `BarrierBoard`: the shared state of the scenario `barrier` instruction, in an `Int32Array` so
 * that CPUs on any host (one thread or many) rendezvous through the same words.
 *
 * Each barrier *instance* is one (name, occurrence) pair: the k-th time a program reaches barrier
 * N meets the k-th occurrence of N in every other program that has one. A CPU that halts or faults
 * before reaching an instance withdraws from it, so nobody waits for it (scenario spec).
 */

/** Words per instance: arrived, required, released. */
const WORDS = 3;
const ARRIVED = 0;
const REQUIRED = 1;
const RELEASED = 2;

/** A board's state as plain data for another thread. */
export interface SharedBarrierBoard {
  readonly buffer: SharedArrayBuffer;
  readonly names: readonly string[];
  readonly instanceOf: readonly (readonly number[])[];
}

/** The barrier instances of a set of programs, and their shared words. */
export class BarrierBoard {
  /** The shared words; `blockedIndex` values index into this array. */
  readonly words: Int32Array;
  /** Instance names, for messages: `name#k`. */
  readonly names: readonly string[];
  /** `instanceOf[cpu][pc]`: the instance a CPU's barrier instruction at `pc` belongs to, or -1. */
  get instanceOf(): readonly (readonly number[])[] {
    return this.rows;
  }

  /** Called once each time an instance opens (the machine bumps the CPUs' wake words). */
  onOpen: (() => void) | undefined;

  private readonly rows: number[][];

  private constructor(words: Int32Array, names: string[], instanceOf: number[][]) {
    this.words = words;
    this.names = names;
    this.rows = instanceOf;
  }

  /**
   * Gives CPU `cpu` a new program's barrier positions (`program`: a barrier name or undefined per
   * instruction), for a program loaded before the CPU's first step. The instances and their
   * required counts stay as they are, so the new program must name the same barriers in the same
   * order; only where they sit may change.
   *
   * @throws Error naming both barrier lists when they differ.
   */
  reassign(cpu: number, program: readonly (string | undefined)[]): void {
    const old = this.rows[cpu];
    if (old === undefined) throw new RangeError(`cpu ${cpu} has no program on this barrier board`);
    const ids = old.filter((id) => id >= 0);
    const before = ids.map((id) => this.names[id]!.replace(/#\d+$/, ''));
    const after = program.filter((name) => name !== undefined);
    if (before.length !== after.length || before.some((name, k) => name !== after[k])) {
      const list = (names: readonly string[]) =>
        names.length === 0 ? 'none' : names.map((n) => JSON.stringify(n)).join(', ');
      throw new Error(
        `cpu ${cpu}: the program must keep its barriers (${list(before)}) in that order, not ${list(after)}: every CPU's barrier instances and counts are set when the machine is built`,
      );
    }
    let k = 0;
    this.rows[cpu] = program.map((name) => (name === undefined ? -1 : ids[k++]!));
  }

  /**
   * Numbers the instances of `programs` (each a list of barrier names or undefined per
   * instruction) and sets each instance's `required` count to the CPUs that have it.
   */
  static create(programs: readonly (readonly (string | undefined)[])[]): BarrierBoard {
    const ids = new Map<string, number>();
    const names: string[] = [];
    const required: number[] = [];
    const instanceOf = programs.map((program) => {
      const seen = new Map<string, number>();
      return program.map((name) => {
        if (name === undefined) return -1;
        const k = seen.get(name) ?? 0;
        seen.set(name, k + 1);
        const key = `${name}#${k}`;
        let id = ids.get(key);
        if (id === undefined) {
          id = names.length;
          ids.set(key, id);
          names.push(key);
          required.push(0);
        }
        required[id]!++;
        return id;
      });
    });
    const words = new Int32Array(new SharedArrayBuffer(Math.max(1, names.length) * WORDS * 4));
    required.forEach((n, id) => {
      words[id * WORDS + REQUIRED] = n;
    });
    return new BarrierBoard(words, names, instanceOf);
  }

  /** What another thread needs to wrap the same board (`fromShared`); structured-clonable. */
  shared(): SharedBarrierBoard {
    return {
      buffer: this.words.buffer as SharedArrayBuffer,
      names: this.names,
      instanceOf: this.instanceOf,
    };
  }

  /** Wraps a board another thread exported with `shared()`: both see the same words. */
  static fromShared(shared: SharedBarrierBoard): BarrierBoard {
    return new BarrierBoard(
      new Int32Array(shared.buffer),
      [...shared.names],
      shared.instanceOf.map((row) => [...row]),
    );
  }

  /** Records that a CPU reached instance `id`; true when the barrier is now open. */
  arrive(id: number): boolean {
    // The add and the check below pair with withdraw(): whichever of the two sees the final
    // counts opens the barrier, so it opens exactly when the last live participant arrives.
    Atomics.add(this.words, id * WORDS + ARRIVED, 1);
    return this.openIfComplete(id);
  }

  /** A halted CPU will never reach instance `id`: stop waiting for it. */
  withdraw(id: number): void {
    Atomics.sub(this.words, id * WORDS + REQUIRED, 1);
    this.openIfComplete(id);
  }

  /** True once instance `id` opened. */
  isOpen(id: number): boolean {
    return Atomics.load(this.words, id * WORDS + RELEASED) !== 0;
  }

  /** CPUs that reached instance `id` so far. */
  arrived(id: number): number {
    return Atomics.load(this.words, id * WORDS + ARRIVED);
  }

  /** CPUs instance `id` still waits for in all (participants that have not withdrawn). */
  required(id: number): number {
    return Atomics.load(this.words, id * WORDS + REQUIRED);
  }

  /** The word index a waiting CPU blocks on (it changes from 0 when the barrier opens). */
  releaseWord(id: number): number {
    return id * WORDS + RELEASED;
  }

  private openIfComplete(id: number): boolean {
    const base = id * WORDS;
    if (Atomics.load(this.words, base + ARRIVED) >= Atomics.load(this.words, base + REQUIRED)) {
      // Exactly one caller opens it (arrive and withdraw may race here on worker threads); it
      // wakes waiters on the release word and, through `onOpen`, on their wake words.
      if (Atomics.compareExchange(this.words, base + RELEASED, 0, 1) === 0) {
        Atomics.notify(this.words, base + RELEASED);
        this.onOpen?.();
      }
      return true;
    }
    return this.isOpen(id);
  }
}
