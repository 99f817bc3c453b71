// Full data (npm run test:data): the counts and splits of the full omniglot28 files.
import { describe, expect, it } from 'vitest';
import { loadOmniglot } from '../../src/data/omniglot.ts';

describe('Omniglot 28x28', () => {
  const o = loadOmniglot();

  it('has 32,460 images of 28x28 in 1,623 classes of 20 drawers', () => {
    expect(o.count).toBe(32460);
    expect(o.images.length).toBe(32460 * 784);
    expect([o.height, o.width, o.maxValue]).toEqual([28, 28, 255]);
    expect(o.numClasses).toBe(1623);
    expect(o.labels[0]).toBe(0);
    expect(o.labels[19]).toBe(0);
    expect(o.labels[20]).toBe(1);
    expect(o.labels[32459]).toBe(1622);
    expect(o.characterId(20)).toBe(2);
    expect(o.drawer(21)).toBe(2);
  });

  it('has the background (30 alphabets, 964 characters) and evaluation (20, 659) splits', () => {
    expect(o.splits.background.length).toBe(19280);
    expect(o.splits.evaluation.length).toBe(13180);
    expect(o.splits.background[0]).toBe(0);
    expect(o.splits.evaluation[0]).toBe(19280);
    const bg = o.alphabets.filter((a) => a.set === 'images_background');
    const ev = o.alphabets.filter((a) => a.set === 'images_evaluation');
    expect([bg.length, ev.length]).toEqual([30, 20]);
    expect(bg.reduce((s, a) => s + a.count, 0)).toBe(964);
    expect(ev.reduce((s, a) => s + a.count, 0)).toBe(659);
    expect(o.alphabetOf(0).name).toBe('Arcadian');
    expect(o.alphabetOf(19280).name).toBe('Angelic');
    expect(o.alphabetOf(32459).name).toBe('ULOG');
    for (const c of o.alphabetOfClass) expect(c).toBeGreaterThanOrEqual(0);
  });

  it('holds stroke intensities with 255 = ink on a 0 background', () => {
    let sum = 0;
    let max = 0;
    const n = 2000 * 784;
    for (let j = 0; j < n; j++) {
      sum += o.images[j]!;
      if (o.images[j]! > max) max = o.images[j]!;
    }
    expect(max).toBe(255);
    const mean = sum / n / 255;
    expect(mean).toBeGreaterThan(0.03);
    expect(mean).toBeLessThan(0.3);
    expect(o.images[0]).toBe(0); // corner pixel: background
  });

});
