/**
 * The estimators vmm knows, as data: the arguments of each in `train { estimator = ... }`, which
 * models it fits (one rule, used by the checker with locations and by the CLI and library for
 * overrides), the trace handlers it needs (src/lower/handlers.ts, by name), its label in plans
 * and tables, and its constructor. Adding an estimator is one module and one entry here
 * (docs/extending.md).
 */
import type { EstimatorKind, EstimatorSettings, IrExpr, IrProgram, IrSite, IrStmt } from '../ir/types.ts';
import { family } from '../families/registry.ts';
import { childrenOf, exprsOf } from '../ir/traverse.ts';
import { softAttentionProblem } from '../ir/soft_attention.ts';

// IR traversal lives in src/ir/traverse.ts; re-exported for the lowering's handlers.
export { childrenOf, exprsOf };
import { EnumerateEstimator } from './enumerate.ts';
import { IwaeEstimator } from './iwae.ts';
import { ReinforceEstimator } from './reinforce.ts';
import { RelaxedEstimator } from './relaxed.ts';
import { RwsEstimator } from './rws.ts';
import { SoftEstimator } from './soft.ts';
import type { Estimator } from './types.ts';
import { VimcoEstimator } from './vimco.ts';

/** An argument of an estimator in the train block. */
export type ArgSpec =
  /** `below`: the diagnostic when a count under `min` is written (its code and why). */
  | { name: 'k'; kind: 'count'; min: number; below?: { code: string; why: string } }
  | { name: 'baseline'; kind: 'choice'; choices: readonly string[]; field: 'vimcoBaseline' | 'reinforceBaseline' }
  | { name: 'temperature'; kind: 'positive' };

/** Why an estimator does not fit a model; `site` names the latent a note points at. */
export interface Misfit {
  code: string;
  severity: 'error' | 'warning';
  message: string;
  notes: { message: string; site?: string }[];
  /** Reported at the estimator's `k:` argument rather than at the estimator. */
  atK?: boolean;
}

/** Handler names of src/lower/handlers.ts (the lowering maps each to its handler). */
export type HandlerName = 'enumerate' | 'soft' | 'relaxed' | 'wake';

export interface EstimatorSpec {
  kind: EstimatorKind;
  args: readonly ArgSpec[];
  /** Samples per example when the file gives no k. */
  defaultK: number;
  /** The trace handlers it needs, top of the stack first. */
  handlers: readonly HandlerName[];
  /** What the lowering hands it: K-sample terms, or terms per enumerated value. */
  terms: 'sampled' | 'enumerated';
  /** A one-line summary for `--help` and the editor. */
  summary: string;
  label(s: EstimatorSettings): string;
  fits(ir: IrProgram, s: EstimatorSettings): Misfit[];
  make(s: EstimatorSettings): Estimator;
}

const K: ArgSpec = { name: 'k', kind: 'count', min: 1 };

function sites(stmts: IrStmt[]): IrSite[] {
  return stmts.filter((s): s is IrSite => s.stmt === 'site');
}

function latents(ir: IrProgram): IrSite[] {
  return sites(ir.model).filter((s) => s.role !== 'observe');
}

/** Latents whose guide draws have no pathwise gradient (discrete, or a non-reparameterized family). */
export function scoreFunctionSites(ir: IrProgram): IrSite[] {
  const guide = new Map(sites(ir.guide.stmts).map((s) => [s.name, s]));
  return latents(ir).filter((s) => {
    if (s.discrete) return true;
    const d = guide.get(s.name)?.dist;
    return d?.kind === 'family' && family(d.family)?.reparameterized === false;
  });
}

const names = (xs: IrSite[]) => xs.map((s) => `\`${s.name}\``).join(', ');
const err = (code: string, message: string, notes: Misfit['notes'] = []): Misfit => ({ code, severity: 'error', message, notes });

/** True if `name` appears other than as the index of a memory read `t[name]`. */
function usedOutsideReads(e: IrExpr, name: string): boolean {
  switch (e.op) {
    case 'ref':
      return e.name === name;
    case 'index':
      return usedOutsideReads(e.target, name) || (e.index.op === 'ref' && e.index.name === name ? false : usedOutsideReads(e.index, name));
    case 'const':
      return false;
    case 'net':
      return usedOutsideReads(e.arg, name) || (e.skips ?? []).some((s) => usedOutsideReads(s.arg, name));
    case 'unary':
    case 'slice':
    case 'reduce':
    case 'neural_read':
      return usedOutsideReads(e.arg, name);
    case 'concat':
      return e.args.some((a) => usedOutsideReads(a, name));
    case 'attend':
      return [e.query, e.keys, e.values].some((a) => usedOutsideReads(a, name));
    case 'matmul':
    case 'dot':
    case 'binary':
      return usedOutsideReads(e.left, name) || usedOutsideReads(e.right, name);
  }
}


/** The guide sites that the guide's distribution of `name` depends on (through guide lets). */
function guideSitesIn(ir: IrProgram, name: string): IrSite[] {
  const guideSites = new Map(sites(ir.guide.stmts).map((s) => [s.name, s]));
  const lets = new Map<string, IrExpr>();
  for (const st of ir.guide.stmts) if (st.stmt === 'let') lets.set(st.name, st.value);
  const found = new Set<string>();
  const visit = (e: IrExpr): void => {
    if (e.op === 'ref') {
      if (e.ref === 'site' && guideSites.has(e.name)) found.add(e.name);
      else if (e.ref === 'let' && lets.has(e.name)) visit(lets.get(e.name)!);
      return;
    }
    for (const c of childrenOf(e)) visit(c);
  };
  const site = guideSites.get(name);
  if (site) for (const e of exprsOf([site])) visit(e);
  return latents(ir).filter((s) => found.has(s.name) && s.name !== name);
}


/** Soft and relaxed reads replace addresses that only index memory; other discrete latents stay. */
function readsOnly(ir: IrProgram, kind: 'soft' | 'relaxed'): Misfit[] {
  const what = kind === 'soft' ? '`soft` attention' : '`relaxed`';
  const lat = latents(ir);
  const addresses = lat.filter((s) => s.role === 'address');
  if (addresses.length === 0) {
    return [err('VMM3011', `${what} replaces the reads \`g(mem[a])\` of an address by a weighted average over entries, but the model has no \`discrete address\``)];
  }
  const others = scoreFunctionSites(ir).filter((s) => s.role !== 'address');
  if (others.length) {
    return [err('VMM3011', `${what} replaces addresses only; the latents ${names(others)} would still need a score-function estimator`, [{ message: 'declared here', site: others[0]!.name }])];
  }
  for (const a of addresses) {
    for (const e of exprsOf([...ir.model, ...ir.guide.stmts])) {
      if (usedOutsideReads(e, a.name)) {
        return [err('VMM3011', `${what} needs the address \`${a.name}\` to be used only to read entries (as \`mem[${a.name}]\`)`, [{ message: 'declared here', site: a.name }])];
      }
    }
    const p = kind === 'soft' && !ir.softAttention ? softAttentionProblem(ir, a.name) : undefined;
    if (p) return [err('VMM3011', p.message, [{ message: 'the address is declared here', site: p.site }])];
  }
  return [];
}

/** For score-function estimators on a model without any site that needs one. */
function pointless(ir: IrProgram, s: EstimatorSettings): Misfit[] {
  if (scoreFunctionSites(ir).length) return [];
  return [
    {
      code: 'VMM3014',
      severity: 'warning',
      message: `\`${s.kind}\` is meant for discrete latents, but every latent of this model is continuous (reparameterized): \`iwae(k: ${Math.max(s.k, 1)})\` computes the same bound with less variance`,
      notes: [],
    },
  ];
}

const SPECS: readonly EstimatorSpec[] = [
  {
    kind: 'vimco',
    args: [{ ...K, min: 2, below: { code: 'VMM3012', why: 'its baseline for each sample is built from the other samples' } }, { name: 'baseline', kind: 'choice', choices: ['geometric', 'arithmetic'], field: 'vimcoBaseline' }],
    defaultK: 4,
    handlers: [],
    terms: 'sampled',
    summary: 'VIMCO: score function with leave-one-out baselines (Mnih & Rezende 2016)',
    label: (s) => `vimco(k: ${s.k}, baseline: ${s.vimcoBaseline})`,
    fits: (ir, s) =>
      s.k < 2
        ? [{ ...err('VMM3012', `\`vimco\` needs k >= 2 samples: its baseline for each sample is built from the other samples; found k = ${s.k}`), atK: true }]
        : pointless(ir, s),
    make: (s) => new VimcoEstimator(s.k, s.vimcoBaseline),
  },
  {
    kind: 'reinforce',
    args: [K, { name: 'baseline', kind: 'choice', choices: ['running', 'nvil', 'none'], field: 'reinforceBaseline' }],
    defaultK: 1,
    handlers: [],
    terms: 'sampled',
    summary: 'REINFORCE with a running or learned (NVIL) baseline (Mnih & Gregor 2014)',
    label: (s) => `reinforce(k: ${s.k}, baseline: ${s.reinforceBaseline})`,
    fits: pointless,
    make: (s) => new ReinforceEstimator(s.k, { baseline: s.reinforceBaseline }),
  },
  {
    kind: 'enumerate',
    args: [K],
    defaultK: 1,
    handlers: ['enumerate'],
    terms: 'enumerated',
    summary: 'exact sum over one Categorical latent (the address)',
    label: (s) => `enumerate(k: ${s.k})`,
    fits: (ir) => {
      const score = scoreFunctionSites(ir);
      const cats = score.filter((s) => s.dist.kind === 'Categorical');
      if (score.length === 0) {
        return [err('VMM3010', '`enumerate` sums exactly over one discrete address (or Categorical latent), but the model has no discrete latent', [{ message: 'every latent is continuous: use `iwae(k: 1)`' }])];
      }
      if (score.length > 1 || cats.length !== 1) {
        const first = score.find((s) => s.role !== 'address') ?? score[1] ?? score[0]!;
        return [
          err('VMM3010', `\`enumerate\` sums exactly over one discrete address (or Categorical latent) and nothing else, but the model has the discrete latents ${names(score)}${cats.length ? '' : ', none of them Categorical'}`, [
            { message: `\`${first.name}\` is declared here`, site: first.name },
            { message: 'use `vimco(k: 4)` or `reinforce(k: 4)` for several discrete latents' },
          ]),
        ];
      }
      const site = cats[0]!;
      const drawn = guideSitesIn(ir, site.name);
      if (drawn.length) {
        return [
          err('VMM3010', `\`enumerate\` sums over \`${site.name}\` with weights q(${site.name} | x), but its guide depends on the sampled ${names(drawn)}`, [
            { message: `\`${site.name}\` is declared here`, site: site.name },
            { message: 'use `vimco(k: 4)` or `rws(k: 4)`' },
          ]),
        ];
      }
      return [];
    },
    make: (s) => new EnumerateEstimator(s.k),
  },
  {
    kind: 'soft',
    args: [K],
    defaultK: 1,
    handlers: ['soft'],
    terms: 'sampled',
    summary: 'soft attention: a model with a latent query u ~ N(0, I); reads are averages over entries weighted by softmax(keys @ u)',
    label: (s) => `soft(k: ${s.k})`,
    fits: (ir) => readsOnly(ir, 'soft'),
    make: (s) => new SoftEstimator(s.k),
  },
  {
    kind: 'relaxed',
    args: [K, { name: 'temperature', kind: 'positive' }],
    defaultK: 1,
    handlers: ['relaxed'],
    terms: 'sampled',
    summary: 'Gumbel-softmax relaxation of the address (Jang et al. 2016; Maddison et al. 2016), biased',
    label: (s) => `relaxed(k: ${s.k}, temperature: ${s.temperature})`,
    fits: (ir) => readsOnly(ir, 'relaxed'),
    make: (s) => new RelaxedEstimator(s.k, s.temperature),
  },
  {
    kind: 'rws',
    args: [K],
    defaultK: 4,
    handlers: ['wake'],
    terms: 'sampled',
    summary: 'reweighted wake-sleep, wake phase (Bornschein & Bengio 2015)',
    label: (s) => `rws(k: ${s.k})`,
    fits: () => [],
    make: (s) => new RwsEstimator(s.k),
  },
  {
    kind: 'iwae',
    args: [K],
    defaultK: 1,
    handlers: [],
    terms: 'sampled',
    summary: 'importance-weighted bound with reparameterized latents only (Burda et al. 2015)',
    label: (s) => `iwae(k: ${s.k})`,
    fits: (ir) => {
      const score = scoreFunctionSites(ir);
      if (!score.length) return [];
      return [
        err(
          'VMM3015',
          `\`iwae\` differentiates through reparameterized samples only, so the guide of the discrete latents ${names(score)} would get no gradient: use \`vimco\`, \`reinforce\`, \`rws\`, \`enumerate\`, \`relaxed\` or \`soft\``,
        ),
      ];
    },
    make: (s) => new IwaeEstimator(s.k),
  },
];

const BY_KIND = new Map(SPECS.map((s) => [s.kind, s]));

export function estimatorSpecs(): readonly EstimatorSpec[] {
  return SPECS;
}

export function estimatorKinds(): EstimatorKind[] {
  return SPECS.map((s) => s.kind);
}

export function estimatorSpec(kind: string): EstimatorSpec | undefined {
  return BY_KIND.get(kind as EstimatorKind);
}

/** The problems of training `ir` with its estimator settings (errors and warnings). */
export function estimatorMisfits(ir: IrProgram): Misfit[] {
  const s = ir.train.estimator;
  const spec = estimatorSpec(s.kind);
  if (!spec) return [err('VMM3003', `unknown estimator \`${s.kind}\` (expected ${estimatorKinds().map((k) => `\`${k}\``).join(', ')})`)];
  return spec.fits(ir, s);
}

/** The first error of `estimatorMisfits` as one sentence, or undefined when the estimator fits. */
export function estimatorProblem(ir: IrProgram): string | undefined {
  return estimatorMisfits(ir).find((m) => m.severity === 'error')?.message;
}

/** Builds the estimator a program's settings ask for. */
export function makeEstimator(s: EstimatorSettings): Estimator {
  const spec = estimatorSpec(s.kind);
  if (!spec) throw new Error(`makeEstimator: unknown estimator kind '${s.kind}'`);
  return spec.make(s);
}
