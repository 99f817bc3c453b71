/**
 * `vmm export pytorch MODEL.vmm --out DIR`: a self-contained Python package (docs/scaling.md):
 *
 *   model.py        generated from the IR (./emit.ts): the model and guide as an nn.Module, the
 *                   estimator's surrogate, the file's settings
 *   vmm_runtime.py  fixed (./runtime/): plated helpers, the trace, families' base, safetensors,
 *                   Adam, data and episodes, vmm's run folder
 *   train.py        fixed (./runtime/): the entry point, alone or under torchrun
 *   model.vmm       the source, which the run folders train.py writes carry (vmm eval reads it)
 *   data/<set>.npz  the image set vmm trains on, as vmm loads it (unless `data: false`); a
 *                   generated set is described in export.json and drawn by vmm_runtime.py
 *
 * A construct without a PyTorch emission is a located diagnostic (VMM3040), and nothing is written.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileSource } from '../../check/pipeline.ts';
import { frontEnd } from '../../check/pipeline.ts';
import { indexProgram } from '../../check/positions.ts';
import type { PipelineSettings } from '../../check/pipeline.ts';
import { error, type Diagnostic } from '../../diagnostics/diagnostic.ts';
import { estimatorSpec } from '../../estimators/registry.ts';
import type { IrProgram } from '../../ir/types.ts';
import { baselineNet } from '../../lower/compile.ts';
import { dataBinding, type DataBinding } from './data.ts';
import { emitModel, type ExportProblem } from './emit.ts';

/** The code of a construct the exporter cannot emit; src/export/torch/codes.ts says why it is kept apart. */
export const EXPORT_CODE = 'VMM3040';

/** The fixed files, beside this module in the sources and in dist/ (scripts/build.mjs copies them). */
export const RUNTIME_DIR = join(dirname(fileURLToPath(import.meta.url)), 'runtime');
export const RUNTIME_FILES = ['vmm_runtime.py', 'train.py'] as const;

export interface ExportResult {
  /** The program exported (after the settings and the addressing transform). */
  ir?: IrProgram;
  diagnostics: Diagnostic[];
  /** File name -> contents, when there are no errors. */
  files?: Record<string, string>;
}

/** Where a problem is in the source: the statement declaring its site, net or param, or the train block. */
function locate(source: string, p: ExportProblem): { start: number; end: number } {
  const fe = frontEnd(source);
  if (fe.program) {
    const info = indexProgram(fe.program).names.find((n) => n.name === p.at);
    if (info) return info.item;
  }
  const at = source.search(p.at === 'estimator' ? /\bestimator\s*=/ : new RegExp(`\\b${p.at.replace(/[^A-Za-z0-9_]/g, '')}\\b`));
  return at >= 0 ? { start: at, end: at + (p.at === 'estimator' ? 9 : p.at.length) } : { start: 0, end: 0 };
}

/** The problems of exporting `ir` as diagnostics located in `source`. */
export function exportDiagnostics(source: string, ir: IrProgram, problems: readonly ExportProblem[]): Diagnostic[] {
  return problems.map((p) =>
    error(EXPORT_CODE, `\`vmm export pytorch\` cannot emit ${p.construct} in ${ir.name}${p.at === 'estimator' ? '' : ` (at '${p.at}')`}`, locate(source, p), [
      { message: 'docs/scaling.md lists what the PyTorch export supports' },
    ]),
  );
}

/** Compiles `source` and generates the package's files (no writing). */
export function exportPytorch(source: string, settings?: PipelineSettings): ExportResult {
  const r = compileSource(source, { ...(settings ? { settings } : {}), budget: false });
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (!r.compiled || errors.length) {
    const problem = r.problem ? [error('VMM3005', r.problem.message, { start: 0, end: 0 })] : [];
    return { diagnostics: [...r.diagnostics, ...problem] };
  }
  const ir = r.compiled;
  const spec = estimatorSpec(ir.train.estimator.kind);
  const needsBaseline = spec?.make(ir.train.estimator).needsBaselineNet ?? false;
  const emitted = emitModel(ir, needsBaseline ? { baselineNet: baselineNet(ir) } : {});
  if (emitted.problems.length) return { ir, diagnostics: exportDiagnostics(source, ir, emitted.problems) };
  const files: Record<string, string> = { 'model.py': emitted.source, 'model.vmm': source };
  for (const f of RUNTIME_FILES) files[f] = readFileSync(join(RUNTIME_DIR, f), 'utf8');
  // How train.py feeds the model: an image set's inputs, or a generated set's recipe (./data.ts).
  let data: DataBinding | undefined;
  try {
    data = dataBinding(ir);
  } catch {
    data = undefined; // a model the data set cannot feed: train.py says so when it starts
  }
  const inputs = { data: ir.data.map((d) => d.name), memories: ir.memories.map((m) => m.name) };
  files['export.json'] = JSON.stringify({ format: 'vmm-export-pytorch', version: 1, model: ir.name, train: ir.train, inputs, ...(data ? { data } : {}) }, null, 2) + '\n';
  return { ir, diagnostics: [], files };
}

/** Writes the files into `dir` (made if absent). */
export function writePackage(dir: string, files: Readonly<Record<string, string | Uint8Array>>): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
}
