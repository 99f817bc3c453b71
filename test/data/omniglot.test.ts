import { describe, expect, it } from 'vitest';
import { loadOmniglot, parseOmniglotIndex } from '../../src/data/omniglot.ts';
import { DataError } from '../../src/data/paths.ts';
import { fixtureData } from '../fixtures/data.ts';

// The fixture subset (test/fixtures/data): 20 characters x 20 drawers. The full set's counts are
// checked by test/full_data/omniglot.test.ts (npm run test:data).
describe('Omniglot 28x28 (fixture subset)', () => {
  const o = loadOmniglot(fixtureData);

  it('has 400 images of 28x28 in 20 classes of 20 drawers', () => {
    expect(o.count).toBe(400);
    expect(o.images.length).toBe(400 * 784);
    expect([o.height, o.width, o.maxValue]).toEqual([28, 28, 255]);
    expect(o.numClasses).toBe(20);
    expect(o.labels[0]).toBe(0);
    expect(o.labels[19]).toBe(0);
    expect(o.labels[20]).toBe(1);
    expect(o.labels[399]).toBe(19);
    expect(o.characterId(20)).toBe(2);
    expect(o.drawer(21)).toBe(2);
  });

  it('has background (3 alphabets, 13 characters) and evaluation (2, 7) splits', () => {
    expect(o.splits.background.length).toBe(260);
    expect(o.splits.evaluation.length).toBe(140);
    expect(o.splits.background[0]).toBe(0);
    expect(o.splits.evaluation[0]).toBe(260);
    const bg = o.alphabets.filter((a) => a.set === 'images_background');
    const ev = o.alphabets.filter((a) => a.set === 'images_evaluation');
    expect([bg.length, ev.length]).toEqual([3, 2]);
    expect(bg.reduce((s, a) => s + a.count, 0)).toBe(13);
    expect(ev.reduce((s, a) => s + a.count, 0)).toBe(7);
    expect(o.alphabetOf(0).name).toBe('Greek');
    expect(o.alphabetOf(260).name).toBe('Angelic');
    expect(o.alphabetOf(399).name).toBe('ULOG');
    for (const c of o.alphabetOfClass) expect(c).toBeGreaterThanOrEqual(0);
  });

  it('holds stroke intensities with 255 = ink on a 0 background', () => {
    let sum = 0;
    let max = 0;
    const n = o.images.length;
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

  it('decodes once per process', () => {
    expect(loadOmniglot(fixtureData)).toBe(o);
  });

  it('rejects a malformed index with a DataError', () => {
    expect(() => parseOmniglotIndex('{', 'x.json')).toThrow(DataError);
    expect(() => parseOmniglotIndex('{"numImages": 3, "numCharacters": 2, "drawersPerCharacter": 2}', 'x.json')).toThrow(
      /numImages/,
    );
  });
});
