/**
 * The layers as an allow-list (docs/extending.md, "Layers"), the way stanc3's dune files name each
 * library's `libraries`: every folder of src/ lists the folders it MAY import, and an import of any
 * other folder of src/ or grammar/ is an error. `npm run deps` checks it; CI runs it, so an upward
 * import, an import the list does not name, or a new folder missing from the list fails the build.
 *
 *   cli -> driver -> jobs -> runtime -> lower -> estimators -> families -> kernels -> (tfjs)
 *                                          \-> ir <- check <- ast <- grammar
 *   jobs: what one command does (train, eval, sample, classify, index, compare, run folders);
 *   runtime: the engine they drive (trainer, optimizer, checkpoints, backends)
 *   check reads the registries (estimators, families, data sets); lsp is a front-end tool beside the cli
 *   data, report, diagnostics, random: leaves used from above (data binds a model's IR inputs)
 *
 * Packages and Node's own modules may be imported from anywhere.
 */
const MAY_IMPORT = {
  // leaves
  diagnostics: [],
  random: [],
  report: [],
  kernels: [],
  // the front end
  ast: ['grammar', 'diagnostics'],
  ir: ['diagnostics'],
  check: ['ast', 'ir', 'diagnostics', 'families', 'estimators', 'data'],
  lsp: ['grammar', 'ast', 'check', 'ir', 'diagnostics', 'families'],
  // tensor maths and inference
  families: ['kernels', 'random'],
  estimators: ['ir', 'families', 'kernels', 'random'],
  lower: ['ir', 'estimators', 'families', 'kernels', 'random', 'diagnostics'],
  data: ['ir', 'random', 'report', 'diagnostics'],
  // the engine and what drives it
  runtime: ['check', 'ir', 'lower', 'estimators', 'families', 'kernels', 'random', 'data', 'report', 'diagnostics'],
  jobs: ['check', 'ir', 'lower', 'estimators', 'families', 'kernels', 'random', 'data', 'report', 'diagnostics', 'runtime'],
  // a second target beside the tfjs lowering (vmm export pytorch): reads the IR and the registries
  export: ['check', 'ir', 'lower', 'estimators', 'families', 'kernels', 'random', 'data', 'report', 'diagnostics', 'runtime'],
  driver: ['check', 'ir', 'lower', 'estimators', 'families', 'kernels', 'random', 'data', 'report', 'diagnostics', 'runtime', 'jobs', 'export'],
  cli: ['ast', 'check', 'ir', 'lower', 'estimators', 'families', 'kernels', 'random', 'data', 'report', 'diagnostics', 'runtime', 'jobs', 'driver', 'lsp', 'export'],
};

const WHY = {
  diagnostics: 'diagnostics are data: spans, codes, rendering',
  random: 'the random number generator is a leaf',
  report: 'tables, plots and images know nothing of models',
  kernels: "vmm's own tfjs kernels and stopGradient: tensor code under every layer that uses it",
  ast: 'the AST knows only the grammar',
  ir: 'the IR is data: it knows nothing of the stages around it',
  check: 'the checker never depends on how a model is lowered or run (it reads the registries: families, estimators, data sets)',
  lsp: 'the language server uses the front end only: it never trains or lowers',
  families: 'distribution families are tensor math',
  estimators: 'estimators see terms, not models',
  lower: 'the lowering never depends on the runtime that drives it',
  data: 'data loading knows nothing of models',
  runtime: 'the engine (trainer, optimizer, checkpoints, backends) knows no command: jobs drive it, never the reverse',
  jobs: "a command's job (a run folder trained, evaluated, sampled, classified, compared) sits on the engine, under the CLI and the library",
  export: 'the PyTorch export is a second target: generated code from the IR and the registries, beside the tfjs lowering, under the CLI',
  driver: 'the driver composes the stages for the CLI and the library',
  cli: 'the command line sits on top',
};

const folders = Object.keys(MAY_IMPORT);
const local = '^(src|grammar)/';

const layerRules = folders.map((name) => ({
  name: `${name}-may-import`,
  severity: 'error',
  comment: `${WHY[name]}: src/${name}/ may import ${MAY_IMPORT[name].length ? MAY_IMPORT[name].join(', ') : 'no other folder'}`,
  from: { path: `^src/${name}/` },
  to: {
    path: local,
    pathNot: `^(${[`src/${name}/`, ...MAY_IMPORT[name].map((f) => (f === 'grammar' ? 'grammar/' : `src/${f}/`))].join('|')})`,
  },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'grammar-is-a-leaf',
      severity: 'error',
      comment: 'the grammar has no semantics',
      from: { path: '^grammar/' },
      to: { path: '^src/' },
    },
    {
      name: 'library-entry',
      severity: 'error',
      comment: 'the library (src/index.ts) exports the stages and the driver, never the command line',
      from: { path: '^src/index\\.ts$' },
      to: { path: '^src/(cli|lsp)/' },
    },
    {
      name: 'every-folder-listed',
      severity: 'error',
      comment: 'a folder of src/ is missing from MAY_IMPORT in .dependency-cruiser.cjs: say what it may import',
      from: { path: '^src/[^/]+/', pathNot: `^src/(${folders.join('|')})/` },
      to: { path: local },
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(node_modules|test|bench|dist)' },
  },
};
