/** CSV: RFC 4180 quoting, one row per record, non-finite numbers left empty. */

import { describe, expect, it } from 'vitest';
import { toCsv } from '../../src/bench/csv.ts';

describe('toCsv', () => {
  it('writes a header and quotes fields with commas, quotes or line breaks', () => {
    const csv = toCsv<{ a: string; b: number }>(
      [
        { name: 'name', value: (r) => r.a },
        { name: 'x', value: (r) => r.b },
      ],
      [
        { a: 'plain', b: 1.5 },
        { a: 'a,b', b: Number.NaN },
        { a: 'say "hi"\nthere', b: -2 },
      ],
    );
    expect(csv).toBe('name,x\r\nplain,1.5\r\n"a,b",\r\n"say ""hi""\nthere",-2\r\n');
  });
});
