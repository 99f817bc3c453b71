/**
 * `explain`: what `vmm check --explain` prints about a checked model: its sites in order with
 * their role, type, distribution and how each gets its gradient; the nets with their shapes and
 * parameter counts; the guide the compiler will use (derived sites marked, in .vmm syntax); and
 * the training settings with the defaults filled in.
 */
import { estimatorSpec, filledSettings } from '../estimators/registry.ts';
import { family } from '../families/registry.ts';
import { printExpr, printTrain } from '../ir/print.ts';
import { KEY_REFRESH_STEPS } from '../ir/types.ts';
import { formatGuide, formatLet, formatNet, formatSite } from './format.ts';
import { netParamCount } from './nets.ts';
import { formatSize, formatType } from '../ir/size.ts';
import { checkedFamily, type CheckedProgram, type CheckedSite } from './types.ts';

const group = (n: number) => n.toLocaleString('en-US');

function pad(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** For a latent table an address ranges over (VSM's semantic slots): its entries and who reads them. */
function slotsNote(p: CheckedProgram, s: CheckedSite): string | undefined {
  if (s.role === 'observe' || s.type.shape.length < 2) return undefined;
  const readers = p.model.filter((x): x is CheckedSite => x.stmt === 'site' && x.role === 'address' && x.dist.kind === 'Categorical' && x.dist.form === 'uniform' && x.dist.memory === s.name);
  if (!readers.length) return undefined;
  const entry = formatType({ elem: s.type.elem, shape: s.type.shape.slice(1) });
  return `latent memory: ${formatSize(s.type.shape[0]!)} slots of ${entry}, inferred by the guide, addressed by ${readers.map((r) => `\`${r.name}\``).join(', ')}`;
}

/** How the gradient reaches a site's guide under the chosen estimator (its registry entry says it). */
function handling(p: CheckedProgram, s: CheckedSite): string {
  if (s.role === 'observe') return `likelihood of the data \`${s.name}\``;
  const d = s.dist;
  const fam = family(checkedFamily(d));
  if (!s.discrete && fam?.reparameterized !== false) return 'continuous: reparameterized (gradients flow through the sample)';
  const what =
    s.role === 'address' && d.kind === 'Categorical' && d.form === 'uniform' && d.table
      ? `one of the ${formatSize(d.n)} entries of \`${printExpr(d.table)}\``
      : fam?.discrete
        ? `discrete ${fam.name}`
        : `continuous ${checkedFamily(d)}, drawn without a pathwise gradient`;
  const e = filledSettings(p.train.estimator);
  const spec = estimatorSpec(e.kind);
  const latent = { name: s.name, what, values: s.type.card ? formatSize(s.type.card) : '' };
  return spec ? spec.explain(e, latent) : `${what}; not reparameterizable`;
}

export function explain(p: CheckedProgram): string {
  const out: string[] = [`model ${p.name}`, ''];

  out.push('inputs:');
  const inputs: string[][] = [];
  for (const d of p.data) inputs.push(['  data', d.name, formatType(d.type), d.observed ? 'observed' : 'given (not observed)']);
  for (const m of p.memories) inputs.push(['  memory', m.name, formatType(m.type), 'entries supplied with each episode']);
  for (const q of p.params) {
    const n = q.type.shape.reduce((a, s) => a * s.c, 1);
    inputs.push(['  param', q.name, formatType(q.type), `learned, ${group(n)} values, init ${q.init.kind === 'zeros' ? 'zeros' : `normal(${q.init.std})`}`]);
  }
  out.push(...pad(inputs));
  if (p.sizeSymbols.length) out.push(`  sizes ${p.sizeSymbols.join(', ')}: bound per episode`);
  if (p.consts.length) out.push(`  consts ${p.consts.map((c) => `${c.name} = ${c.value}`).join(', ')}`);

  out.push('', 'model, in order:');
  let i = 0;
  for (const s of p.model) {
    if (s.stmt === 'let') {
      out.push(`      ${formatLet(s.ast)}    : ${formatType(s.type)}`);
      continue;
    }
    i++;
    out.push(`  ${String(i).padStart(2)}. ${s.ast.kind === 'Site' ? formatSite(s.ast) : s.name}`);
    out.push(`        ${s.role} ${s.name} : ${formatType(s.type)}; ${handling(p, s)}`);
    const slots = slotsNote(p, s);
    if (slots) out.push(`        ${slots}`);
  }

  out.push('', 'nets:');
  const rows: string[][] = [];
  let total = 0;
  for (const n of p.nets) {
    const count = netParamCount(n.layers);
    total += count;
    rows.push([`  ${n.name}`, `[${n.inShape.join(', ')}] -> [${n.outShape.join(', ')}]`, `${group(count)} params`, n.derived ? '(derived for the guide)' : '']);
  }
  out.push(...pad(rows));
  const paramValues = p.params.reduce((a, q) => a + q.type.shape.reduce((b, s) => b * s.c, 1), 0);
  out.push(`  total: ${group(total)} net parameters${paramValues ? ` + ${group(paramValues)} in params` : ''}`);

  if (p.neural.length) {
    out.push('', 'neural memories (Titans: weights written per episode, read by a forward pass without update):');
    for (const n of p.neural) {
      const mem = p.memories.find((m) => m.name === n.memory);
      const netOf = (name: string) => p.nets.find((x) => x.name === name);
      const io = (name: string) => {
        const x = netOf(name);
        return x ? `\`${name}\` [${x.inShape.join(', ')}] -> [${x.outShape.join(', ')}]` : `\`${name}\``;
      };
      const values = n.widths.slice(1).reduce((a, w, l) => a + n.widths[l]! * w + w, 0);
      out.push(`  ${n.name}: mlp ${n.widths.map((w) => `[${w}]`).join(' -> ')} (${n.activation}), initial weights learned (${n.weights.join(', ')}; ${group(values)} values)`);
      out.push(`    writes the entries of \`${n.memory}\`${mem ? ` : ${formatType(mem.type)}` : ''}, ${n.chunk === 1 ? 'one entry per step' : `in chunks of ${n.chunk} (gradients at each chunk's first weights)`}`);
      out.push(`    key ${io(n.key)}, value ${io(n.value)}, gates ${io(n.gates)}`);
      out.push(`    rule: S_t = eta_t S_{t-1} - theta_t grad ||${n.name}(k_t) - v_t||^2, ${n.name}_t = (1 - alpha_t) ${n.name}_{t-1} + S_t`);
      out.push(`          theta = ${n.lr} * sigmoid(g0), eta = ${n.momentum === 0 ? '0' : `${n.momentum === 1 ? '' : `${n.momentum} * `}sigmoid(g1)`}, alpha = ${n.forget === 0 ? '0' : `${n.forget === undefined || n.forget === 1 ? '' : `${n.forget} * `}sigmoid(g2 - 4)`} with g = ${n.gates}(entry); keys and queries L2-normalized${n.writeBias === false ? '; biases not written' : ''}`);
    }
  }

  out.push('');
  if (p.guide.derived) {
    out.push('guide (derived by the compiler: the file has no guide block):');
    for (const n of p.guide.derivedNets) out.push(`  ${formatNet(n)}`);
    out.push(...formatGuide(p.guide.block, '  '));
    for (const note of p.guide.notes) out.push(`  - ${note.site}: ${note.reason}`);
  } else {
    out.push('guide (written in the file):', ...formatGuide(p.guide.block, '  '));
  }

  out.push('', 'training (defaults marked):');
  const keys = ['estimator', 'optimizer', 'batch', 'steps', 'episodes', 'dataset', 'address'];
  const lines = printTrain(p.train);
  out.push(...pad(lines.map((l, j) => [`  ${l}`, p.trainExplicit.includes(keys[j]!) ? '' : '(default)'])));
  const a = p.train.address;
  if (a) {
    out.push(
      `  addresses proposed from the guide's ${a.k} most probable entries and ${a.tail} other entries drawn uniformly per example`,
      `    (r(a) = (1 - eps) q(a | x) / q(top) on the top entries, eps / (M - ${a.k}) on each other entry; eps from the tail sample, within [0.01, 0.5]);`,
      `    the bound is importance-weighted by r, so it stays a lower bound on log p(x); a memory of at most ${a.k} entries is proposed from q itself`,
      `    a shared memory's keys are cached and recomputed every ${a.refresh ?? KEY_REFRESH_STEPS} steps${a.refresh === undefined ? ' (the default; `refresh: N` sets it)' : ''}`,
      a.probe !== undefined
        ? `    the top is searched in the ${a.probe} best of about sqrt(M) buckets of the cached keys (regrouped at each refresh), not over every key`
        : `    the top is searched over every cached key (\`probe: P\` searches P buckets of them instead)`,
    );
  }
  return out.join('\n') + '\n';
}
