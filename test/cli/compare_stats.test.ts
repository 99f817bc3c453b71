/**
 * The statistics of `vmm compare` over seeds: means over seeds with seed-level standard errors,
 * paired differences seed by seed over the same targets, one seed falling back to target-level.
 */
import { describe, expect, it } from 'vitest';
import { pairedVariants, summarize, type CompareEntry } from '../../src/jobs/compare_stats.ts';
import { controlSeedTable, controlTable } from '../../src/jobs/compare_report.ts';

function entry(variant: string, seed: number, nll1: number[], nll2: number[], control = false): CompareEntry {
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const d = nll2.map((v, i) => v - nll1[i]!);
  return {
    variant,
    seed,
    run: `runs/${variant}-${seed}`,
    train: { steps: 10, msPerStep: 5, trainedSeconds: 60 },
    eval: {
      model: 'm',
      estimator: 'vimco',
      soft: false,
      ...(control ? { control: true } : {}),
      samples: 10,
      parameters: 100,
      nll: [
        { classes: 1, memory: 1, nll: mean(nll1), se: 0.5, values: nll1, episodes: nll1.length },
        { classes: 1, memory: 2, nll: mean(nll2), se: 0.5, values: nll2, episodes: nll2.length, diff: { vs: 1, mean: mean(d), se: 0.1 } },
      ],
      ways: [{ ways: 5, accuracy: 0.2 * seed, se: 0.05, episodes: 10 }],
      large: [],
    },
  };
}

describe('compare over seeds', () => {
  const es = [
    entry('hard', 1, [10, 12, 14], [8, 10, 12]),
    entry('hard', 2, [11, 13, 15], [7, 9, 11]),
    entry('hard', 3, [12, 14, 16], [9, 11, 13]),
    entry('ctl', 1, [10, 12, 14], [10, 12, 14], true),
    entry('ctl', 2, [10, 12, 14], [10, 12, 14], true),
    entry('ctl', 3, [10, 12, 14], [10, 12, 14], true),
  ];
  const [hard, ctl] = summarize(es);

  it('means over seeds with seed-level standard errors', () => {
    // Seed means at M = 1: 12, 13, 14 -> mean 13, sd 1, se 1/sqrt(3).
    expect(hard!.nll.get(1)!.mean).toBeCloseTo(13, 10);
    expect(hard!.nll.get(1)!.se).toBeCloseTo(1 / Math.sqrt(3), 10);
    expect(hard!.nll.get(1)!.over).toBe('seeds');
    // Drops per seed: -2, -4, -3.
    expect(hard!.drop!.mean).toBeCloseTo(-3, 10);
    expect(hard!.drop!.se).toBeCloseTo(1 / Math.sqrt(3), 10);
    expect(hard!.ways.get(5)!.mean).toBeCloseTo(0.4, 10);
    expect(ctl!.control).toBe(true);
  });

  it('the control table gives the paired difference at every M and says whether the memory is ahead beyond 2 s.e. at all of them', () => {
    const t = controlTable(es);
    // M = 1: hard seed means 12, 13, 14 against the control's 12: 0, 1, 2 -> 1.00 ± 0.58, not ahead.
    expect(t).toContain('| hard ');
    expect(t).toContain('1.00 ± 0.58');
    expect(t).toContain('-2.00 ± 0.58');
    expect(t.trim().split('\n').at(-1)).toMatch(/\| no\s*\|$/);
    // A variant ahead at both sizes: every seed 3 nats below the control, with a spread.
    const better = [1, 2, 3].map((s) => entry('mem', s, [9 - s / 10, 9, 11], [9 - s / 10, 9, 11]));
    const t2 = controlTable([...better, ...es.filter((e) => e.variant === 'ctl')]);
    expect(t2.trim().split('\n').at(-1)).toMatch(/\| yes\s*\|$/);
    expect(controlTable(es.filter((e) => e.variant === 'hard'))).toBe('');
  });

  it('the seed-by-seed table gives each seed against the control of the same seed, ± over targets', () => {
    // Padding aside: the table's cells with single spaces.
    const t = controlSeedTable(es).replace(/ +/g, ' ');
    const rows = t.trim().split('\n').slice(2);
    expect(rows).toHaveLength(3);
    // M = 1: hard seed 2 (11, 13, 15) minus control seed 2 (10, 12, 14): 1 at every target, se 0.
    expect(rows[1]).toMatch(/^\| hard, seed 2 - control seed 2 \| 1\.00 ± 0\.00 \| -3\.00 ± 0\.00 \|$/);
    // M = 2: seed 3 (9, 11, 13) minus (10, 12, 14): -1.
    expect(rows[2]).toContain('-1.00 ± 0.00');
    // A spread over targets shows as its standard error: seed 1 of `mem` at M = 1 is (8.9, 9, 11) - (10, 12, 14).
    const better = [1, 2].map((s) => entry('mem', s, [9 - s / 10, 9, 11], [9, 9, 11]));
    const t2 = controlSeedTable([...better, ...es.filter((e) => e.variant === 'ctl')]).replace(/ +/g, ' ');
    const d = [8.9 - 10, 9 - 12, 11 - 14];
    const m = d.reduce((a, b) => a + b, 0) / 3;
    const se = Math.sqrt(d.reduce((a, b) => a + (b - m) ** 2, 0) / 2 / 3);
    expect(t2).toContain(`| mem, seed 1 - control seed 1 | ${m.toFixed(2)} ± ${se.toFixed(2)} |`);
    // One seed, or no control: no table.
    expect(controlSeedTable([es[0]!, es[3]!])).toBe('');
    expect(controlSeedTable(es.filter((e) => e.variant === 'hard'))).toBe('');
  });

  it('paired differences pair seed i with seed i over the same targets', () => {
    // M = 2: hard seed means 10, 9, 11 against the control's 12: -2, -3, -1.
    const d = pairedVariants(hard!, ctl!, 2)!;
    expect(d.mean).toBeCloseTo(-2, 10);
    expect(d.se).toBeCloseTo(1 / Math.sqrt(3), 10);
  });

  it('one seed: the standard error is over targets, and says so', () => {
    const [one] = summarize([es[0]!]);
    expect(one!.nll.get(1)).toEqual({ mean: 12, se: 0.5, over: 'targets', n: 1 });
  });
});
