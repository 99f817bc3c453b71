/**
 * `printIr`: the IR as stable, line-oriented text, for `vmm dump ir` and the golden tests.
 * Expressions are printed infix (`h(mem) @ h(x)`, `prior(r)[0:32]`); every statement and every
 * distribution parameter is printed with its type.
 */
import { formatSize, formatType } from './size.ts';
import type { AddressProposal, EstimatorSettings, IrDist, IrExpr, IrLayer, IrNet, IrProgram, IrStmt, TrainSettings } from './types.ts';

const BIN: Record<string, [string, number]> = { add: ['+', 1], sub: ['-', 1], mul: ['*', 2], div: ['/', 2] };

function prec(e: IrExpr): number {
  if (e.op === 'binary') return BIN[e.fn]![1];
  if (e.op === 'matmul') return 2;
  if (e.op === 'unary') return 3;
  return 4;
}

function wrap(e: IrExpr, parens: boolean): string {
  const s = printExpr(e);
  return parens ? `(${s})` : s;
}

function num(v: number): string {
  return String(v);
}

export function printExpr(e: IrExpr): string {
  switch (e.op) {
    case 'const':
      return num(e.value);
    case 'ref':
      return e.name;
    case 'net': {
      const skips = (e.skips ?? []).map((s) => `, ${s.name}: ${printExpr(s.arg)}`).join('');
      return `${e.net}(${printExpr(e.arg)}${skips})${e.tap ? `.${e.tap}` : ''}`;
    }
    case 'index':
      return `${wrap(e.target, prec(e.target) < 4)}[${printExpr(e.index)}]`;
    case 'builtin':
      return `${e.fn}(${e.args.map(printExpr).join(', ')})`;
    case 'matmul':
      return `${wrap(e.left, prec(e.left) < 2)} @ ${wrap(e.right, prec(e.right) <= 2)}`;
    case 'unary':
      return `-${wrap(e.arg, prec(e.arg) <= 3)}`;
    case 'binary': {
      const [op, p] = BIN[e.fn]!;
      return `${wrap(e.left, prec(e.left) < p)} ${op} ${wrap(e.right, prec(e.right) <= p)}`;
    }
    case 'slice':
      return `${wrap(e.arg, prec(e.arg) < 4)}[${e.from}:${e.to}]`;
    case 'neural_read':
      return `${e.neural.name}(${printExpr(e.arg)})`;
  }
}

function printLayer(l: IrLayer): string {
  switch (l.kind) {
    case 'linear':
      return `linear(${l.in}, ${l.out}${l.bias ? `, bias: ${l.bias}` : ''})`;
    case 'slice':
      return `slice(${l.from}, ${l.to})`;
    case 'act':
      return l.fn;
    case 'reshape':
      return `reshape(${l.shape.join(', ')})`;
    case 'flatten':
      return 'flatten';
    case 'conv2d':
    case 'deconv2d':
      return `${l.kind}(${l.inChannels}, ${l.outChannels}, kernel: ${l.kernel}, stride: ${l.stride}, padding: ${l.padding})`;
    case 'call':
      return `call ${l.net}`;
    case 'tap':
      return `tap(${l.name})`;
    case 'skip':
      return `skip(${l.name}, ${l.channels})`;
  }
}

function printNet(n: IrNet): string[] {
  const ports = (what: string, ps: IrNet['taps']) => (ps?.length ? `  ${what} ${ps.map((p) => `${p.name} [${p.shape.join(', ')}]`).join(', ')}` : '');
  const out = [
    `net ${n.name} : [${n.inShape.join(', ')}] -> [${n.outShape.join(', ')}]  params ${n.paramCount}${ports('skips', n.skips)}${ports('taps', n.taps)}`,
  ];
  for (const l of n.layers) out.push(`  ${printLayer(l)}`);
  return out;
}

function param(name: string, e: IrExpr): string {
  return `    ${name} : ${formatType(e.type)} = ${printExpr(e)}`;
}

function printDist(d: IrDist): [string, string[]] {
  if (d.kind === 'family') return [d.family, d.params.map((e, i) => param(d.paramNames[i] ?? `p${i}`, e))];
  if (d.logits) return [`${d.kind}(n: ${formatSize(d.n)})`, [param('logits', d.logits)]];
  return [`${d.kind}(n: ${formatSize(d.n)}, uniform${d.memory ? `, memory: ${d.memory}` : ''}${d.offset && formatSize(d.offset) !== '0' ? ` from row ${formatSize(d.offset)}` : ''})`, []];
}

function printStmts(stmts: IrStmt[]): string[] {
  const out: string[] = [];
  for (const s of stmts) {
    if (s.stmt === 'let') {
      out.push(`  let ${s.name} : ${formatType(s.type)} = ${printExpr(s.value)}`);
      continue;
    }
    const [head, params] = printDist(s.dist);
    const how = s.role === 'observe' ? '' : s.discrete ? '  [discrete]' : '  [reparameterized]';
    out.push(`  ${s.role} ${s.name} : ${formatType(s.type)} ~ ${head}${how}`, ...params);
  }
  return out;
}

/** An estimator as written in a train block: `vimco(k: 4, baseline: geometric)`; every argument shown. */
export function printEstimator(e: EstimatorSettings): string {
  const args = Object.entries(e.args).map(([name, v]) => `, ${name}: ${typeof v === 'number' ? num(v) : v}`);
  return `${e.kind}(k: ${e.k}${args.join('')})`;
}

export function printTrain(t: TrainSettings): string[] {
  const est = printEstimator(t.estimator);
  return [
    `estimator = ${est}`,
    `optimizer = ${t.optimizer.kind}(lr: ${num(t.optimizer.lr)}${t.optimizer.clip !== undefined ? `, clip: ${num(t.optimizer.clip)}` : ''})`,
    `batch = ${t.batch}`,
    `steps = ${t.steps}`,
    `episodes = episodes(classes: ${t.episodes.classes}, shots: ${t.episodes.shots}, distractors: ${t.episodes.distractors}${t.episodes.minShots ? `, min_shots: ${t.episodes.minShots}` : ''})`,
    `dataset = ${t.dataset}`,
    ...(t.address ? [`address = ${printAddress(t.address)}`] : []),
  ];
}

/** `topk(k: 32, tail: 8)`, as a train block writes it. */
export function printAddress(a: AddressProposal): string {
  return `topk(k: ${a.k}, tail: ${a.tail}${a.refresh !== undefined ? `, refresh: ${a.refresh}` : ''}${a.probe !== undefined ? `, probe: ${a.probe}` : ''})`;
}

export function printIr(ir: IrProgram): string {
  const out: string[] = [`model ${ir.name}`];
  for (const [k, v] of Object.entries(ir.consts)) out.push(`const ${k} = ${num(v)}`);
  if (ir.sizeSymbols.length) out.push(`size ${ir.sizeSymbols.join(', ')}`);
  for (const d of ir.data) out.push(`data ${d.name} : ${formatType(d.type)}`);
  for (const m of ir.memories) out.push(`memory ${m.name} : ${formatType(m.type)}`);
  for (const p of ir.params) {
    out.push(`param ${p.name} : ${formatType(p.type)} = ${p.init.kind === 'zeros' ? 'zeros' : `normal(${num(p.init.std)})`}`);
  }
  for (const n of ir.nets) out.push(...printNet(n));
  for (const n of ir.neural ?? []) {
    out.push(
      `neural ${n.name} = mlp(${n.widths.join(', ')}, act: ${n.activation}) from params ${[...n.weights, ...n.biases].join(', ')}`,
      `  writes ${n.memory}(key: ${n.key}, value: ${n.value}, gates: ${n.gates}, chunk: ${n.chunk}, lr: ${num(n.lr)}${n.momentum !== 1 ? `, momentum: ${num(n.momentum)}` : ''}${n.forget !== undefined && n.forget !== 1 ? `, forget: ${num(n.forget)}` : ''}${n.writeBias === false ? ', bias: 0' : ''})`,
    );
  }
  out.push('model {', ...printStmts(ir.model), '}');
  out.push(`guide${ir.guide.derived ? ' (derived)' : ''} {`, ...printStmts(ir.guide.stmts), '}');
  out.push('train {', ...printTrain(ir.train).map((l) => `  ${l}`), '}');
  return out.join('\n') + '\n';
}
