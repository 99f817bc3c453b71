/**
 * The direction of the layers (docs/extending.md, "Layers"): each folder may import only the
 * folders below it. `npm run deps` checks it; CI runs it, so a new upward import fails the build.
 *
 *   cli -> driver -> runtime -> lower -> estimators -> families -> (tfjs)
 *                                  \-> ir <- check <- ast <- grammar
 *   data, report, diagnostics: leaves used from above
 */
const forbid = (name, from, to, comment) => ({ name, severity: 'error', comment, from: { path: from }, to: { path: to } });

module.exports = {
  forbidden: [
    forbid('ir-is-data', '^src/ir/', '^src/(check|lower|estimators|runtime|driver|cli|data)/', 'the IR is data: it knows nothing of the stages around it'),
    forbid('check-below-lowering', '^src/check/', '^src/(lower|runtime|driver|cli|data)/', 'the checker never depends on how a model is lowered or run'),
    forbid('ast-below-check', '^src/ast/', '^src/(check|ir|lower|estimators|runtime|driver|cli)/', 'the AST knows only the grammar'),
    forbid('estimators-below-lowering', '^src/estimators/', '^src/(check|lower|runtime|driver|cli)/', 'estimators see terms, not models'),
    forbid('families-are-leaves', '^src/families/', '^src/(check|ir|lower|runtime|driver|cli|data)/', 'distribution families are tensor math'),
    forbid('lower-below-runtime', '^src/lower/', '^src/(runtime|driver|cli|data)/', 'the lowering never depends on the runtime that drives it'),
    forbid('runtime-below-cli', '^src/runtime/', '^src/(driver|cli)/', 'the runtime is used by the CLI and the library, never the reverse'),
    forbid('driver-below-cli', '^src/driver/', '^src/cli/', 'the driver composes the stages for the CLI and the library'),
    forbid('data-is-a-leaf', '^src/data/', '^src/(check|lower|runtime|driver|cli)/', 'data loading knows nothing of models'),
    forbid('lsp-is-a-front-end-tool', '^src/lsp/', '^src/(lower|estimators|runtime|driver|cli|data)/', 'the language server uses the front end only: it never trains or lowers'),
    forbid('grammar-is-a-leaf', '^grammar/', '^src/', 'the grammar has no semantics'),
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(node_modules|test|bench|dist)' },
  },
};
