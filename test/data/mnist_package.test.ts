import { describe, expect, it } from 'vitest';
import { loadMnistPackage } from '../../src/data/mnist_package.ts';

describe('mnist package (10,000 labelled digits)', () => {
  const m = loadMnistPackage();

  it('has 10,000 28x28 intensity images with digit labels', () => {
    expect(m.count).toBe(10000);
    expect(m.images.length).toBe(10000 * 784);
    expect(m.numClasses).toBe(10);
    expect(m.perClass.reduce((a, b) => a + b, 0)).toBe(10000);
    const counts = new Array(10).fill(0);
    for (const l of m.labels) counts[l]++;
    expect(counts).toEqual(m.perClass);
    let max = 0;
    let sum = 0;
    for (const v of m.images) {
      sum += v;
      if (v > max) max = v;
    }
    expect(max).toBe(255);
    expect(sum / m.images.length / 255).toBeGreaterThan(0.08);
    expect(sum / m.images.length / 255).toBeLessThan(0.2);
  });

  it('has a deterministic stratified train/test split (100 test images per digit)', () => {
    const { train, test } = m.splits;
    expect(test.length).toBe(1000);
    expect(train.length).toBe(9000);
    expect(new Set([...train, ...test]).size).toBe(10000);
    const testCounts = new Array(10).fill(0);
    for (const i of test) testCounts[m.labels[i]!]++;
    expect(testCounts).toEqual(new Array(10).fill(100));
    expect(loadMnistPackage()).toBe(m);
    expect(loadMnistPackage({ testPerClass: 50 }).splits.test.length).toBe(500);
  });
});
