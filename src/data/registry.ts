/**
 * The data sets known by name, one registry entry each (a file of ./sets/), the way the families
 * and the estimators are registries: an entry says everything about its data set — how it loads,
 * which split trains and which tests, what is held out for validation, or how it generates its
 * models' inputs — and nothing else switches on its name. The checker reads the names (a
 * `dataset = ...` in a `train { }` block), the CLI its flags' help, the jobs the loaders.
 *
 * Anything else given as a data set is a path to the user's own data (./sets/user.ts).
 */
import type { DatasetSpec } from './spec.ts';
import { binarizedMnistDataset } from './sets/binarized_mnist.ts';
import { mnistDataset } from './sets/mnist.ts';
import { omniglotDataset } from './sets/omniglot.ts';
import { recallDataset } from './sets/recall.ts';
import { syntheticDataset } from './sets/synthetic.ts';

export type { DatasetSpec, GeneratedDatasetSpec, ImageDatasetSpec, ImageSplits, LoadOptions, TrainValidSplits } from './spec.ts';

/** The built-in data sets, in the order the checker and `--help` list them. */
const SPECS: DatasetSpec[] = [mnistDataset, omniglotDataset, binarizedMnistDataset, syntheticDataset, recallDataset];

const byName = new Map(SPECS.map((s) => [s.name, s]));

/** Adds a data set (a program or a test may, without editing this file); its name must be new. */
export function registerDataset(spec: DatasetSpec): void {
  if (byName.has(spec.name)) throw new Error(`registerDataset: a data set named '${spec.name}' is already registered`);
  SPECS.push(spec);
  byName.set(spec.name, spec);
}

/** The registered data set of this name, or undefined (then the name is a path to the user's data). */
export function datasetSpec(name: string): DatasetSpec | undefined {
  return byName.get(name);
}

/** The names of the registered data sets. */
export function datasetNames(): string[] {
  return SPECS.map((s) => s.name);
}

/** A name of the registry, as opposed to a path to the user's data. */
export function isBuiltinDataset(name: string): boolean {
  return byName.has(name);
}

/** Data sets that generate every input of their models themselves (no images to bind). */
export function isGenerated(name: string): boolean {
  return byName.get(name)?.kind === 'generated';
}
