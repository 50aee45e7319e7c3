/**
 * Keeps the README honest: its API examples are `examples/quickstart.ts` and
 * `examples/step-shootdown.ts` verbatim, and running each file prints exactly the output block the
 * README shows under it.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(`${root}README.md`, 'utf8');

/** The fenced blocks of a README section, in order, as `[language, body]`. */
function blocks(section: string): [string, string][] {
  const start = readme.indexOf(`## ${section}`);
  expect(start, `README has a "## ${section}" section`).toBeGreaterThanOrEqual(0);
  const end = readme.indexOf('\n## ', start + 1);
  const text = readme.slice(start, end < 0 ? undefined : end);
  return [...text.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => [m[1]!, m[2]!]);
}

const EXAMPLES = ['quickstart', 'step-shootdown'] as const;

describe('README API examples', () => {
  const found = blocks('API example');

  it('has a code block and an output block per example', () => {
    expect(found.map(([lang]) => lang)).toEqual(EXAMPLES.flatMap(() => ['ts', 'text']));
  });

  EXAMPLES.forEach((name, i) => {
    const code = found[2 * i]?.[1];
    const output = found[2 * i + 1]?.[1];

    it(`shows examples/${name}.ts verbatim`, () => {
      expect(code).toBe(readFileSync(`${root}examples/${name}.ts`, 'utf8'));
    });

    it(`examples/${name}.ts prints exactly the output the README shows`, () => {
      const printed = execFileSync(process.execPath, ['--import', 'tsx', `examples/${name}.ts`], {
        cwd: root,
        encoding: 'utf8',
      });
      expect(printed).toBe(output);
    });
  });
});
