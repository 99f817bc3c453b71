/**
 * What training can bind (VMM303x): an image data set supplies, per example, one image (the
 * `data` input the model observes) and, for memory models, one memory of images of the same data
 * set (the episode's support set). A model that declares inputs no data set can fill, a memory whose
 * entries are not images of the data's size, a size symbol no memory binds, or nothing to learn is
 * refused here, at the declaration, rather than failing in the first training step.
 */
import type { Span } from '../ast/types.ts';
import type { IrProgram } from '../ir/types.ts';
import { isGenerated } from '../data/registry.ts';
import { formatType, shapeEq } from '../ir/size.ts';
import type { Diagnostic, DiagnosticNote } from '../diagnostics/diagnostic.ts';

/**
 * The problems, as diagnostics of the given severity: `vmm check` reports them as warnings (a
 * library user may bind any inputs), `vmm train` on a data set as errors, before it starts.
 */
export function bindingProblems(ir: IrProgram, spanOf: (name: string) => Span | undefined, at: Span, severity: 'error' | 'warning'): Diagnostic[] {
  const out: Diagnostic[] = [];
  const sink = { error: (code: string, message: string, span: Span, notes: DiagnosticNote[] = []) => out.push({ code, severity, message, span, notes }) };
  checkBindable(sink, ir, spanOf, at);
  return out;
}

function checkBindable(ctx: { error(code: string, message: string, span: Span, notes?: DiagnosticNote[]): void }, ir: IrProgram, spanOf: (name: string) => Span | undefined, at: Span): void {
  // A generated data set (its registry entry's kind, src/data/registry.ts) makes every input itself.
  if (isGenerated(ir.train.dataset)) return;
  const where = (name: string) => spanOf(name) ?? at;
  const images = ir.data.filter((d) => d.type.elem === 'binary' || d.type.elem === 'real');
  for (const d of images.slice(1)) {
    ctx.error('VMM3030', `training binds one image per example to \`${images[0]!.name}\`; nothing supplies a second image input \`${d.name}\``, where(d.name), [
      { message: `\`${images[0]!.name}\` is the image input`, span: where(images[0]!.name) },
    ]);
  }
  for (const d of ir.data.filter((x) => x.type.elem !== 'binary' && x.type.elem !== 'real')) {
    ctx.error('VMM3030', `training binds images only; nothing supplies the ${formatType(d.type)} input \`${d.name}\` (labels are not bound yet)`, where(d.name));
  }
  for (const m of ir.memories.slice(1)) {
    ctx.error('VMM3030', `training fills one memory per episode, \`${ir.memories[0]!.name}\`, with support images; nothing fills a second memory \`${m.name}\``, where(m.name), [
      { message: `\`${ir.memories[0]!.name}\` is filled with the episode's images`, span: where(ir.memories[0]!.name) },
    ]);
  }
  const image = images[0];
  const mem = ir.memories[0];
  if (image && mem && !shapeEq(mem.type.shape.slice(1), image.type.shape)) {
    ctx.error(
      'VMM3031',
      `the entries of \`${mem.name}\` : ${formatType(mem.type)} are support images from the same data set as \`${image.name}\` : ${formatType(image.type)}, so each entry must have its shape`,
      where(mem.name),
      [{ message: `\`${image.name}\` is declared here`, span: where(image.name) }],
    );
  }
  const bound = new Set<string>();
  for (const m of ir.memories) for (const s of m.type.shape) for (const [sym, c] of Object.entries(s.terms)) if (c !== 0) bound.add(sym);
  for (const sym of ir.sizeSymbols) {
    if (!bound.has(sym)) {
      ctx.error('VMM3032', `the size \`${sym}\` is bound by no memory: size symbols take their value from the memory supplied with each episode (e.g. \`memory mem : binary[${sym}, D]\`)`, where(sym));
    }
  }
  const learned = ir.nets.length + ir.params.length;
  const first = ir.model.find((s) => s.stmt === 'site');
  if (learned === 0 && first) {
    ctx.error('VMM3033', `${ir.name} has nothing to learn: no net and no param (training adjusts their weights)`, where(first.name));
  }
}
