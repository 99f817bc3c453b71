/**
 * Global set-up of `npm run test:data`: says which full data files the checks need and stops
 * with one clear message when any is missing (instead of a failure in every file).
 */
import { resolveDataDir, resolveDataFile } from '../../src/data/paths.ts';

/** The files the full-data tests read, relative to the data directory. */
export const FULL_DATA_FILES = [
  'omniglot28_index.json',
  'omniglot28_u8.bin.gz',
  'binarized_mnist_train_bits.bin.gz',
  'binarized_mnist_valid_bits.bin.gz',
  'binarized_mnist_test_bits.bin.gz',
  'raw/images_background_small1.zip',
  'raw/images_background_small2.zip',
] as const;

export default function setup(): void {
  const missing: string[] = [];
  for (const f of FULL_DATA_FILES) {
    try {
      resolveDataFile(f);
    } catch {
      missing.push(f);
    }
  }
  if (missing.length === 0) {
    console.log(`test:data: reading the full data from ${resolveDataDir()}`);
    return;
  }
  throw new Error(
    `npm run test:data needs the full data files:\n${FULL_DATA_FILES.map((f) => `  ${missing.includes(f) ? 'MISSING ' : 'found   '} ${f}`).join('\n')}\n` +
      `in a data directory: $VMM_DATA, the \`vmm data get\` cache, or ../shared/data beside the checkout ` +
      `(see docs/guide.md, "Tests and data"). \`npm test\` does not need them.`,
  );
}
