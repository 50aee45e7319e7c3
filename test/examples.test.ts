/**
 * Keeps the README honest: its API example is `examples/quickstart.ts` verbatim, and running that
 * file prints exactly the output block the README shows under it.
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

describe('README API example', () => {
  const [[lang, code], [outLang, output]] = blocks('API example') as [
    [string, string],
    [string, string],
  ];

  it('is examples/quickstart.ts verbatim', () => {
    expect(lang).toBe('ts');
    expect(code).toBe(readFileSync(`${root}examples/quickstart.ts`, 'utf8'));
  });

  it('prints exactly the output the README shows', () => {
    expect(outLang).toBe('text');
    const printed = execFileSync(process.execPath, ['--import', 'tsx', 'examples/quickstart.ts'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(printed).toBe(output);
  });
});
