/**
 * The distribution families vmm knows, by name. Adding a family is one file (see ./laplace.ts)
 * and one line here (docs/extending.md); the checker, the IR printer, the lowering, `vmm check
 * --explain` and the editor's completion read this list.
 */
import { betaFamily } from './beta.ts';
import { bernoulliFamily } from './bernoulli.ts';
import { categoricalFamily } from './categorical.ts';
import { laplaceFamily } from './laplace.ts';
import { normalFamily } from './normal.ts';
import { poissonFamily } from './poisson.ts';
import type { FamilySpec } from './types.ts';

const FAMILIES: readonly FamilySpec[] = [categoricalFamily, bernoulliFamily, normalFamily, laplaceFamily, betaFamily, poissonFamily];

const BY_NAME = new Map(FAMILIES.map((f) => [f.name, f]));

/** Every family, in the order they are listed to users. */
export function families(): readonly FamilySpec[] {
  return FAMILIES;
}

export function familyNames(): string[] {
  return FAMILIES.map((f) => f.name);
}

/** The family called `name`, or undefined. */
export function family(name: string): FamilySpec | undefined {
  return BY_NAME.get(name);
}

export type { Constraint, DerivedGuide, Enumerable, FamilyDist, FamilySpec, ParamSpec, Relaxation, Support, Typing } from './types.ts';
export { ADDRESS_FAMILY } from './categorical.ts';
export { GAUSSIAN } from './normal.ts';
