/**
 * A user's own data set, named by a path rather than a registered name (../user_data.ts): a
 * `.npy`/`.npz` file or a folder of PNGs with one sub-folder per class. Not in the registry: it
 * is what any other name is taken as (../source.ts, `datasetFor`).
 */
import type { ImageDatasetSpec, LoadOptions } from '../spec.ts';
import { loadUserDataset, type UserDataset } from '../user_data.ts';

const cache = new Map<string, UserDataset>();

/** The set at `path`, read once per process for each validation source and image size. */
function loadUserImageSet(path: string, o: LoadOptions): UserDataset {
  const side = o.pixels !== undefined ? Math.round(Math.sqrt(o.pixels)) : 0;
  const size = side > 0 && side * side === o.pixels ? ([side, side] as const) : undefined;
  const key = JSON.stringify([path, o.valid ?? null, size ?? null]);
  let set = cache.get(key);
  if (!set) {
    set = loadUserDataset(path, { ...(o.valid !== undefined ? { valid: o.valid } : {}), ...(size ? { size } : {}) });
    cache.set(key, set);
  }
  return set;
}

/** The entry of the user's data set at `path`: its held-out images (or classes, for episodes) validate and test. */
export function userDataset(path: string): ImageDatasetSpec {
  const load = (o: LoadOptions) => {
    const s = loadUserImageSet(path, o);
    const byClass = (o.memory ?? true) && s.labels !== undefined;
    return { train: s, test: s, trainSplit: byClass ? 'train_classes' : 'train', testSplit: byClass ? 'valid_classes' : 'valid' };
  };
  return {
    name: path,
    kind: 'images',
    summary: `the user's data set ${path}`,
    load,
    trainValid(o) {
      // A user's data set has its own held-out part (a second file, or held-out images or classes).
      const { train, trainSplit, test, testSplit } = load(o);
      return { train, trainSplit, valid: test, validSplit: testSplit, trainName: trainSplit, validName: testSplit };
    },
  };
}
