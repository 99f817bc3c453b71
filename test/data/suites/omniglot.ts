/**
 * The Omniglot 28x28 checks shared by test/data/omniglot.test.ts (the fixture subset, `npm test`)
 * and test/full_data/omniglot.test.ts (the full omniglot28 files, `npm run test:data`): the same
 * assertions, with the counts of the loaded set passed in `scale`.
 */
import { expect, it } from 'vitest';
import type { Omniglot } from '../../../src/data/omniglot.ts';

/** The counts and names the Omniglot checks expect of the loaded files. */
export interface OmniglotScale {
  /** Characters (classes), each of 20 drawers: 20 in the fixtures, 1,623 in the full set. */
  classes: number;
  /** Alphabets and characters of the background split: 3 / 13 in the fixtures, 30 / 964 in full. */
  background: { alphabets: number; characters: number };
  /** Alphabets and characters of the evaluation split: 2 / 7 in the fixtures, 20 / 659 in full. */
  evaluation: { alphabets: number; characters: number };
  /** Name of the first background alphabet (image 0): 'Greek' in the fixtures, 'Arcadian' in full. */
  firstAlphabet: string;
  /**
   * How many images (from the first) the ink statistics read: all of them in the fixtures, the first
   * 2,000 of the full set (a sample that keeps the check fast).
   */
  inkImages: number;
}

const fmt = (n: number): string => n.toLocaleString('en-US');

/** Registers the `it` checks of counts, splits and pixel values of `o` (call inside a describe). */
export function omniglotChecks(o: Omniglot, scale: OmniglotScale): void {
  const images = scale.classes * 20;
  const bgImages = scale.background.characters * 20;
  const evImages = scale.evaluation.characters * 20;

  it(`has ${fmt(images)} images of 28x28 in ${fmt(scale.classes)} classes of 20 drawers`, () => {
    expect(o.count).toBe(images);
    expect(o.images.length).toBe(images * 784);
    expect([o.height, o.width, o.maxValue]).toEqual([28, 28, 255]);
    expect(o.numClasses).toBe(scale.classes);
    expect(o.labels[0]).toBe(0);
    expect(o.labels[19]).toBe(0);
    expect(o.labels[20]).toBe(1);
    expect(o.labels[images - 1]).toBe(scale.classes - 1);
    expect(o.characterId(20)).toBe(2);
    expect(o.drawer(21)).toBe(2);
  });

  const { background: bgScale, evaluation: evScale } = scale;
  it(`has background (${bgScale.alphabets} alphabets, ${bgScale.characters} characters) and evaluation (${evScale.alphabets}, ${evScale.characters}) splits`, () => {
    expect(bgImages + evImages).toBe(images);
    expect(o.splits.background.length).toBe(bgImages);
    expect(o.splits.evaluation.length).toBe(evImages);
    expect(o.splits.background[0]).toBe(0);
    expect(o.splits.evaluation[0]).toBe(bgImages);
    const bg = o.alphabets.filter((a) => a.set === 'images_background');
    const ev = o.alphabets.filter((a) => a.set === 'images_evaluation');
    expect([bg.length, ev.length]).toEqual([bgScale.alphabets, evScale.alphabets]);
    expect(bg.reduce((s, a) => s + a.count, 0)).toBe(bgScale.characters);
    expect(ev.reduce((s, a) => s + a.count, 0)).toBe(evScale.characters);
    expect(o.alphabetOf(0).name).toBe(scale.firstAlphabet);
    expect(o.alphabetOf(bgImages).name).toBe('Angelic');
    expect(o.alphabetOf(images - 1).name).toBe('ULOG');
    for (const c of o.alphabetOfClass) expect(c).toBeGreaterThanOrEqual(0);
  });

  it('holds stroke intensities with 255 = ink on a 0 background', () => {
    let sum = 0;
    let max = 0;
    const n = scale.inkImages * 784;
    expect(n).toBeLessThanOrEqual(o.images.length);
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
}
