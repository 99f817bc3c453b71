/**
 * The editor features of the language server, as pure functions of a document's text: diagnostics
 * (the front end's, as `vmm check` reports them), hover (types with symbolic shapes, net
 * signatures, sites and their guide form, error codes), definition and references, the outline,
 * completion, formatting (`vmm fmt`'s printer) and semantic tokens. src/lsp/server.ts wires them
 * to the protocol. Nothing here parses or checks on its own: it is the front end plus the position
 * index of src/check/positions.ts.
 */
import type { IToken } from 'chevrotain';
import {
  CompletionItemKind,
  DiagnosticSeverity,
  InsertTextFormat,
  SymbolKind,
  type CompletionItem,
  type Diagnostic as LspDiagnostic,
  type DocumentSymbol,
  type Hover,
  type Location,
  type Range,
  type TextEdit,
} from 'vscode-languageserver';
import { TextDocument } from 'vscode-languageserver-textdocument';
import * as T from '../../grammar/tokens.ts';
import { parse } from '../ast/parse.ts';
import { printExpr, printProgram } from '../ast/print.ts';
import type { Expr, Span } from '../ast/types.ts';
import { formatGuideSite, formatLet, formatNet, formatSite } from '../check/format.ts';
import { netParamCount } from '../check/nets.ts';
import { frontEnd } from '../check/pipeline.ts';
import { indexProgram, type IdentAt, type NameInfo, type PositionIndex } from '../check/positions.ts';
import { estimatorNames, TRAIN_KEYS } from '../check/train.ts';
import { CODES } from '../diagnostics/codes.ts';
import { hasErrors, InternalError, type Diagnostic } from '../diagnostics/diagnostic.ts';
import { families } from '../families/registry.ts';
import { builtins } from '../ir/builtins.ts';
import { formatType } from '../ir/size.ts';

/** One analysed version of a document: its diagnostics and its position index. */
export interface Analysis {
  doc: TextDocument;
  diagnostics: Diagnostic[];
  index: PositionIndex;
  /** Over MAX_DOCUMENT_CHARS: analysed (diagnostics, hover, ...) but the heavy features are off. */
  tooLarge?: boolean;
}

/**
 * The largest document (2 Mi characters, some 60k lines) that gets the features whose cost and
 * answer grow with the whole document: semantic tokens, formatting and the outline (issue #22; at
 * 200k lines the tokens alone are megabytes of JSON for the client). A larger one is still
 * analysed (off the connection's thread, ./workers.ts), so its diagnostics, hover, definition,
 * references and completion work; the server says once that the rest is off (tooLargeMessage).
 */
export const MAX_DOCUMENT_CHARS = 2 * 1024 * 1024;

/** What the server shows (window/showMessage) when a document goes over MAX_DOCUMENT_CHARS. */
export function tooLargeMessage(uri: string, chars: number): string {
  const mi = (n: number) => `${(n / (1024 * 1024)).toFixed(1)} Mi characters`;
  const name = uri.slice(uri.lastIndexOf('/') + 1);
  return (
    `vmm: ${name} has ${mi(chars)}, over the language server's limit of ${mi(MAX_DOCUMENT_CHARS)}: ` +
    'semantic highlighting, formatting and the outline are off for it (diagnostics, hover and completion still work)'
  );
}

/** Analyses a document's current version (a snapshot: the server's documents change in place). */
export function analyze(current: TextDocument): Analysis {
  const text = current.getText();
  const doc = TextDocument.create(current.uri, current.languageId, current.version, text);
  let diagnostics: Diagnostic[];
  let program = undefined as ReturnType<typeof parse>['program'] | undefined;
  try {
    const fe = frontEnd(text);
    diagnostics = fe.diagnostics;
    program = fe.program;
  } catch (e) {
    // A bug in the compiler, not the user's mistake: say so, at the top of the file.
    const stage = e instanceof InternalError ? e.stage : 'the front end';
    const msg = e instanceof Error ? e.message : String(e);
    diagnostics = [{ code: 'internal', severity: 'error', message: `internal error in ${stage}: ${msg} (a bug in vmm, please report it)`, span: { start: 0, end: 0 }, notes: [] }];
  }
  // The front end's program, not a second parse of the same text.
  const index = indexProgram(program ?? parse(text).program);
  return text.length > MAX_DOCUMENT_CHARS ? { doc, diagnostics, index, tooLarge: true } : { doc, diagnostics, index };
}

export function toRange(doc: TextDocument, span: Span): Range {
  return { start: doc.positionAt(span.start), end: doc.positionAt(span.end) };
}

// ---------------------------------------------------------------- diagnostics

/** The front end's diagnostics as LSP diagnostics; notes with a place become related information. */
export function lspDiagnostics(a: Analysis): LspDiagnostic[] {
  const { doc } = a;
  return a.diagnostics.map((d) => {
    const placed = d.notes.filter((n) => n.span);
    const unplaced = d.notes.filter((n) => !n.span);
    return {
      range: toRange(doc, d.span),
      severity: d.severity === 'error' ? DiagnosticSeverity.Error : d.severity === 'warning' ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information,
      code: d.code,
      source: 'vmm',
      message: [d.message, ...unplaced.map((n) => `note: ${n.message}`)].join('\n'),
      ...(placed.length
        ? { relatedInformation: placed.map((n) => ({ location: { uri: doc.uri, range: toRange(doc, n.span!) }, message: n.message })) }
        : {}),
    };
  });
}

// ---------------------------------------------------------------- hover

const KIND_TEXT: Record<NameInfo['kind'], string> = {
  model: 'model',
  const: 'const',
  size: 'size symbol (bound per episode)',
  data: 'data input',
  memory: 'memory',
  param: 'learned param',
  net: 'net',
  let: 'let binding',
  site: 'random site',
  neural: 'neural memory (written per episode)',
};

const code = (text: string) => '```vmm\n' + text + '\n```';

/** `g : [784] -> [128]`, with its parameter count. */
export function netSignature(info: NameInfo): string[] {
  const n = info.net;
  if (!n) return [code(`net ${info.name}`)];
  const count = netParamCount(n.layers);
  const calls = n.layers.filter((l) => l.kind === 'call').map((l) => (l.kind === 'call' ? l.net : ''));
  return [
    code(`net ${info.name} : [${n.inShape.join(', ')}] -> [${n.outShape.join(', ')}]`),
    `${count.toLocaleString('en-US')} parameters${calls.length ? ` (plus those of ${calls.map((c) => `\`${c}\``).join(', ')}, shared)` : ''}`,
  ];
}

function nameHover(a: Analysis, info: NameInfo): string[] {
  const typeLine = info.type ? code(`${info.name} : ${formatType(info.type)}`) : undefined;
  const out: string[] = [];
  switch (info.kind) {
    case 'const':
      out.push(code(info.node?.kind === 'Const' ? `const ${info.name} = ${printExpr(info.node.value)}` : `const ${info.name}`));
      if (info.value !== undefined) out.push(`= ${info.value}`);
      return out;
    case 'size':
      return [code(`size ${info.name}`), 'a size symbol: bound per episode (e.g. the number of memory entries), checked symbolically'];
    case 'net':
      out.push(...netSignature(info));
      if (info.node?.kind === 'Net') out.push(code(formatNet(info.node)));
      return out;
    case 'model':
      return [code(`model ${info.name}`)];
    case 'site': {
      const site = info.node?.kind === 'Site' ? info.node : undefined;
      if (typeLine) out.push(typeLine);
      if (site) out.push(`${site.keywords.join(' ')} site, distribution:`, code(formatSite(site)));
      if (info.guideSite?.kind === 'GuideSite') {
        const g = info.guideSite;
        const guide = a.index.checked?.guide;
        const derived = guide?.derived ? guide : undefined;
        out.push(derived ? 'in the derived guide (the file has no guide block):' : 'in the guide:', code(formatGuideSite(g)));
        const note = derived?.notes.find((n) => n.site === info.name);
        if (note) out.push(note.reason);
      }
      return out;
    }
    default:
      if (typeLine) out.push(typeLine);
      out.push(info.scope === 'guide' ? `${KIND_TEXT[info.kind]} of the guide` : KIND_TEXT[info.kind]);
      if (info.node?.kind === 'Let') out.push(code(formatLet(info.node)));
      return out;
  }
}

/** One line per built-in function, from its row of the signature table (src/ir/builtins.ts): `usage: doc`. */
export const BUILTIN_DOCS: Record<string, string> = Object.fromEntries(builtins().map((b) => [b.name, `${b.usage}: ${b.doc}`]));

/** How each distribution family is written (src/families/registry.ts): its forms for hover and completion, and a snippet. */
export const DISTRIBUTION_FORMS: Record<string, { forms: string[]; snippet: string }> = Object.fromEntries(
  families().map((f) => {
    const params = f.params.map((p) => `${p.name}: ${p.constraint}`).join(', ');
    const forms = [`${f.name}(${params})`, `// ${f.usage.replace(/`/g, '')}`, ...(f.reference ? [`// ${f.reference}`] : [])];
    // Families with several written forms (typing other than 'elementwise'): the snippet starts the first parameter by name when there is one.
    const snippet =
      f.typing !== 'elementwise'
        ? f.params.length === 1
          ? `${f.name}(\${1:${f.params[0]!.name}: })`
          : `${f.name}(\${1})`
        : `${f.name}(${f.params.map((p, i) => `${p.name}: \${${i + 1}}`).join(', ')})`;
    return [f.name, { forms, snippet }];
  }),
);

export const LAYER_FORMS: Record<string, { form: string; snippet: string }> = {
  linear: { form: 'linear(IN, OUT, bias: 0)', snippet: 'linear(${1:IN}, ${2:OUT})' },
  mlp: { form: 'mlp(IN, H1, ..., OUT, act: relu)', snippet: 'mlp(${1:IN}, ${2:H}, ${3:OUT})' },
  reshape: { form: 'reshape(C, H, W)', snippet: 'reshape(${1:C}, ${2:H}, ${3:W})' },
  flatten: { form: 'flatten', snippet: 'flatten' },
  conv2d: { form: 'conv2d(IN_CH, OUT_CH, kernel: 3, stride: 2, padding: same)', snippet: 'conv2d(${1:IN_CH}, ${2:OUT_CH}, kernel: ${3:3}, stride: ${4:2}, padding: ${5:same})' },
  deconv2d: { form: 'deconv2d(IN_CH, OUT_CH, kernel: 3, stride: 2, padding: same)', snippet: 'deconv2d(${1:IN_CH}, ${2:OUT_CH}, kernel: ${3:3}, stride: ${4:2}, padding: ${5:same})' },
  relu: { form: 'relu', snippet: 'relu' },
  tanh: { form: 'tanh', snippet: 'tanh' },
  sigmoid: { form: 'sigmoid', snippet: 'sigmoid' },
  elu: { form: 'elu', snippet: 'elu' },
  softplus: { form: 'softplus', snippet: 'softplus' },
  tap: { form: 'tap(NAME)', snippet: 'tap(${1:NAME})' },
  skip: { form: 'skip(NAME, C)', snippet: 'skip(${1:NAME}, ${2:C})' },
  slice: { form: 'slice(FROM, TO)', snippet: 'slice(${1:FROM}, ${2:TO})' },
};

/** The type of an expression, as `` `text` : type ``. */
function exprLine(a: Analysis, e: Expr): string | undefined {
  const info = a.index.exprs.find((x) => x.expr === e);
  return info?.type ? code(`${printExpr(e)} : ${formatType(info.type)}`) : undefined;
}

export function hover(a: Analysis, offset: number): Hover | undefined {
  const { doc, index } = a;
  const parts: string[] = [];
  let span: Span | undefined;
  const codeHit = errorCodeAt(doc.getText(), offset);
  if (codeHit) {
    const entry = CODES[codeHit.code];
    if (!entry) return undefined;
    return { contents: { kind: 'markdown', value: `**${codeHit.code}**: ${entry.summary}` }, range: toRange(doc, codeHit.span) };
  }
  const id = index.identAt(offset);
  if (id) {
    span = id.ident.span;
    parts.push(...identHover(a, id));
  } else {
    const e = index.exprAt(offset);
    if (e?.type) {
      span = e.expr.span;
      parts.push(code(`${printExpr(e.expr)} : ${formatType(e.type)}`));
    }
  }
  // What the codes of the diagnostics here mean (the editor shows their messages itself).
  const codes = [...new Set(a.diagnostics.filter((d) => d.span.start <= offset && offset <= d.span.end).map((d) => d.code))];
  const explained = codes.filter((c) => CODES[c]).map((c) => `**${c}**: ${CODES[c]!.summary}`);
  if (explained.length) {
    if (parts.length) parts.push('---');
    parts.push(...explained);
  }
  if (!parts.length) return undefined;
  return { contents: { kind: 'markdown', value: parts.join('\n\n') }, ...(span ? { range: toRange(doc, span) } : {}) };
}

function identHover(a: Analysis, id: IdentAt): string[] {
  const r = id.role;
  const out: string[] = [];
  if (r.role === 'decl' || r.role === 'ref') {
    const e = a.index.exprs.find((x) => x.expr === id.ident || (id.call && x.expr === id.call));
    out.push(...nameHover(a, r.info));
    if (e && !r.info.type && e.type && e.expr.kind === 'Ident') out.unshift(code(`${id.ident.name} : ${formatType(e.type)}`));
    // The enclosing entry read or call: `full[a]`, `g(full[a])`.
    const parent = id.call ?? e?.parents[0];
    if (parent && (parent.kind === 'Index' || parent.kind === 'Call')) {
      const line = exprLine(a, parent);
      if (line) out.push('---', line);
    }
    return out;
  }
  switch (r.role) {
    case 'builtin':
      out.push(code(BUILTIN_DOCS[id.ident.name] ?? id.ident.name), 'builtin function');
      break;
    case 'distribution':
      out.push(code(DISTRIBUTION_FORMS[id.ident.name]!.forms.join('\n')), 'distribution');
      break;
    case 'layer':
      out.push(code(LAYER_FORMS[id.ident.name]?.form ?? id.ident.name), 'layer');
      break;
    default:
      return out;
  }
  if (id.call) {
    const line = exprLine(a, id.call);
    if (line) out.push('---', line);
  }
  return out;
}

/** A diagnostic code (`VMM2022`) in a comment at `offset`. */
function errorCodeAt(text: string, offset: number): { code: string; span: Span } | undefined {
  const re = /VMM\d{4}/g;
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const lineEnd = text.indexOf('\n', offset);
  const line = text.slice(lineStart, lineEnd === -1 ? text.length : lineEnd);
  const comment = line.indexOf('//');
  if (comment < 0) return undefined;
  re.lastIndex = comment;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    const start = lineStart + m.index;
    if (start <= offset && offset <= start + m[0].length) return { code: m[0], span: { start, end: start + m[0].length } };
  }
  return undefined;
}

// ---------------------------------------------------------------- definition, references

function nameAt(a: Analysis, offset: number): NameInfo | undefined {
  const id = a.index.identAt(offset);
  return id && (id.role.role === 'decl' || id.role.role === 'ref') ? id.role.info : undefined;
}

export function definition(a: Analysis, offset: number): Location | undefined {
  const info = nameAt(a, offset);
  return info ? { uri: a.doc.uri, range: toRange(a.doc, info.decl) } : undefined;
}

export function references(a: Analysis, offset: number, includeDeclaration: boolean): Location[] {
  const info = nameAt(a, offset);
  if (!info) return [];
  const spans = [...(includeDeclaration ? [info.decl] : []), ...info.refs].sort((x, y) => x.start - y.start);
  return spans.map((s) => ({ uri: a.doc.uri, range: toRange(a.doc, s) }));
}

// ---------------------------------------------------------------- outline

const SYMBOL_KIND: Record<NameInfo['kind'], SymbolKind> = {
  model: SymbolKind.Module,
  const: SymbolKind.Constant,
  size: SymbolKind.TypeParameter,
  data: SymbolKind.Field,
  memory: SymbolKind.Array,
  param: SymbolKind.Property,
  net: SymbolKind.Function,
  neural: SymbolKind.Object,
  let: SymbolKind.Variable,
  site: SymbolKind.Event,
};

export function documentSymbols(a: Analysis): DocumentSymbol[] {
  if (a.tooLarge) return [];
  const { doc, index } = a;
  const detail = (n: NameInfo) =>
    n.type ? formatType(n.type) : n.net ? `[${n.net.inShape.join(', ')}] -> [${n.net.outShape.join(', ')}]` : n.value !== undefined ? String(n.value) : KIND_TEXT[n.kind];
  const sym = (n: NameInfo): DocumentSymbol => ({
    name: n.name,
    detail: detail(n),
    kind: SYMBOL_KIND[n.kind],
    range: toRange(doc, n.item),
    selectionRange: toRange(doc, n.decl),
  });
  const out: DocumentSymbol[] = [];
  for (const it of index.program.items) {
    if (it.kind === 'Guide' || it.kind === 'Train') {
      const head = { start: it.span.start, end: it.span.start + 'guide'.length }; // `guide` and `train` are as long
      const children =
        it.kind === 'Guide'
          ? it.body.map((s): DocumentSymbol => {
              const own = index.names.find((n) => n.decl === s.name.span);
              const model = s.kind === 'GuideSite' ? index.names.find((n) => n.kind === 'site' && n.name === s.name.name) : undefined;
              const t = own?.type ?? model?.type;
              return {
                name: s.name.name,
                detail: t ? formatType(t) : s.kind === 'Let' ? 'let' : 'site',
                kind: s.kind === 'Let' ? SymbolKind.Variable : SymbolKind.Event,
                range: toRange(doc, s.span),
                selectionRange: toRange(doc, s.name.span),
              };
            })
          : it.settings.map((s): DocumentSymbol => ({
              name: s.key.name,
              detail: printExpr(s.value),
              kind: SymbolKind.Property,
              range: toRange(doc, s.span),
              selectionRange: toRange(doc, s.key.span),
            }));
      out.push({ name: it.kind === 'Guide' ? 'guide' : 'train', kind: SymbolKind.Namespace, range: toRange(doc, it.span), selectionRange: toRange(doc, head), children });
      continue;
    }
    for (const n of index.names) if (n.item === it.span && n.scope === 'top') out.push(sym(n));
  }
  return out;
}

// ---------------------------------------------------------------- completion

const COMPLETION_KIND: Record<NameInfo['kind'], CompletionItemKind> = {
  model: CompletionItemKind.Module,
  const: CompletionItemKind.Constant,
  size: CompletionItemKind.TypeParameter,
  data: CompletionItemKind.Field,
  memory: CompletionItemKind.Struct,
  param: CompletionItemKind.Property,
  net: CompletionItemKind.Function,
  let: CompletionItemKind.Variable,
  site: CompletionItemKind.Variable,
  neural: CompletionItemKind.Function,
};

/** The words of keyword tokens, from grammar/tokens.ts. */
export const KEYWORDS: string[] = T.statementKeywords.map((t) => t.PATTERN as string);
export const ELEM_TYPES: string[] = [T.BinaryType, T.RealType, T.IntType, T.CatType].map((t) => t.PATTERN as string);

type Place = 'dist' | 'net' | 'type' | 'statement' | 'expr' | 'trainKey' | 'estimator';

/** Whether `offset` is inside a `train { ... }` block (by the text: the block may not parse yet). */
function insideTrain(text: string, offset: number): boolean {
  const before = text.slice(0, offset).replace(/\/\/[^\n]*/g, '');
  const open = before.search(/\btrain\s*\{[^}]*$/);
  return open >= 0;
}

/** What may come at `offset`: after `~` a distribution, in a net a layer, after `:` a type, at a line start a statement. */
function placeAt(text: string, offset: number): Place {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const before = text.slice(lineStart, offset).replace(/\/\/.*$/, '');
  const head = before.replace(/[A-Za-z_][A-Za-z0-9_]*$/, '').trimEnd();
  if (insideTrain(text, lineStart)) {
    if (head === '') return 'trainKey';
    if (/^\s*estimator\s*=$/.test(head)) return 'estimator';
    return 'expr';
  }
  if (head === '') return 'statement';
  if (head.endsWith('~')) return 'dist';
  if (/^\s*net\b/.test(before) && (head.endsWith('=') || head.endsWith('>>'))) return 'net';
  if (/^\s*(data|memory|param)\b[^=]*:$/.test(head) || /^\s*(latent|discrete|address)\b[^~]*:$/.test(head)) return 'type';
  return 'expr';
}

export function completion(a: Analysis, offset: number): CompletionItem[] {
  const text = a.doc.getText();
  const place = placeAt(text, offset);
  const rank = (p: number, label: string) => `${p}${label}`;
  const items: CompletionItem[] = [];
  const first = (want: Place[], p = 0) => (want.includes(place) ? p : 5);
  if (place === 'trainKey' || place === 'estimator') {
    const words = place === 'trainKey' ? TRAIN_KEYS : estimatorNames();
    const kind = place === 'trainKey' ? CompletionItemKind.Property : CompletionItemKind.EnumMember;
    for (const w of words) items.push({ label: w, kind, detail: place === 'trainKey' ? 'training setting' : 'estimator', sortText: rank(0, w) });
    if (place === 'trainKey') return items;
  }
  for (const k of KEYWORDS) items.push({ label: k, kind: CompletionItemKind.Keyword, sortText: rank(first(['statement']), k) });
  for (const k of ELEM_TYPES) items.push({ label: k, kind: CompletionItemKind.TypeParameter, detail: 'element type', sortText: rank(first(['type']), k) });
  for (const n of a.index.visibleAt(offset)) {
    const detail = n.type ? formatType(n.type) : n.net ? `net [${n.net.inShape.join(', ')}] -> [${n.net.outShape.join(', ')}]` : KIND_TEXT[n.kind];
    const p = place === 'net' ? (n.kind === 'net' ? 0 : 6) : place === 'type' ? (n.kind === 'const' || n.kind === 'size' ? 1 : 6) : place === 'statement' ? 3 : 1;
    items.push({ label: n.name, kind: COMPLETION_KIND[n.kind], detail, sortText: rank(p, n.name) });
  }
  for (const [name, d] of Object.entries(DISTRIBUTION_FORMS)) {
    items.push({
      label: name,
      kind: CompletionItemKind.Class,
      detail: 'distribution',
      documentation: { kind: 'markdown', value: code(d.forms.join('\n')) },
      insertText: d.snippet,
      insertTextFormat: InsertTextFormat.Snippet,
      sortText: rank(first(['dist']), name),
    });
  }
  if (place === 'net') {
    for (const [name, l] of Object.entries(LAYER_FORMS)) {
      items.push({ label: name, kind: CompletionItemKind.Function, detail: `layer ${l.form}`, insertText: l.snippet, insertTextFormat: InsertTextFormat.Snippet, sortText: rank(0, name) });
    }
  } else if (place === 'expr' || place === 'dist') {
    for (const [name, doc] of Object.entries(BUILTIN_DOCS)) {
      items.push({ label: name, kind: CompletionItemKind.Function, detail: doc, insertText: `${name}($1)`, insertTextFormat: InsertTextFormat.Snippet, sortText: rank(2, name) });
    }
  }
  return items;
}

// ---------------------------------------------------------------- formatting

/** The whole document through `vmm fmt`'s printer; no edit when the file has syntax errors or is formatted. */
export function format(a: Analysis): TextEdit[] {
  if (a.tooLarge) return [];
  const text = a.doc.getText();
  const { program, diagnostics } = parse(text);
  if (hasErrors(diagnostics)) return [];
  const out = printProgram(program);
  if (out === text) return [];
  return [{ range: { start: a.doc.positionAt(0), end: a.doc.positionAt(text.length) }, newText: out }];
}

// ---------------------------------------------------------------- semantic tokens

export const TOKEN_TYPES = ['keyword', 'type', 'number', 'comment', 'operator', 'variable', 'parameter', 'property', 'function', 'class', 'typeParameter', 'namespace'] as const;
export const TOKEN_MODIFIERS = ['declaration', 'readonly', 'defaultLibrary'] as const;

type TokenType = (typeof TOKEN_TYPES)[number];
type Modifier = (typeof TOKEN_MODIFIERS)[number];

const NAME_TOKEN: Record<NameInfo['kind'], [TokenType, Modifier[]]> = {
  model: ['namespace', []],
  const: ['variable', ['readonly']],
  size: ['typeParameter', []],
  data: ['parameter', []],
  memory: ['variable', []],
  param: ['property', []],
  net: ['function', []],
  let: ['variable', []],
  site: ['variable', []],
  neural: ['function', []],
};

/** Classifies one lexer token (names by what they resolve to, `starts`: the names by start offset). */
function classify(t: IToken, starts: ReadonlyMap<number, IdentAt>): [TokenType, Modifier[]] | undefined {
  const type = t.tokenType;
  if (type === T.Comment) return ['comment', []];
  if (type === T.NumberLit) return ['number', []];
  if (T.statementKeywords.includes(type)) return ['keyword', []];
  const cats = type.CATEGORIES ?? [];
  if (type === T.Identifier || cats.includes(T.Identifier)) {
    const r = starts.get(t.startOffset)?.role;
    if (r && (r.role === 'decl' || r.role === 'ref')) {
      const [tt, mods] = NAME_TOKEN[r.info.kind];
      return [tt, r.role === 'decl' ? [...mods, 'declaration'] : mods];
    }
    if (r?.role === 'distribution') return ['class', ['defaultLibrary']];
    if (r?.role === 'builtin' || r?.role === 'layer') return ['function', ['defaultLibrary']];
    if (r?.role === 'argName') return ['parameter', []];
    if (r?.role === 'settingKey') return ['property', []];
    if (cats.includes(T.ElemType)) return ['type', []];
    return undefined;
  }
  if (type === T.Tilde || type === T.Equals || type === T.Shift || cats.includes(T.AdditiveOp) || cats.includes(T.MultiplicativeOp)) return ['operator', []];
  return undefined;
}

/** LSP semantic tokens: five integers per token, positions relative to the previous token. */
export function semanticTokens(a: Analysis): number[] {
  if (a.tooLarge) return [];
  // The names by where they start: one look-up per token, not a scan of every name (which made
  // a 40k-line document take 16 s).
  const starts = new Map<number, IdentAt>();
  for (const id of a.index.idents) if (!starts.has(id.ident.span.start)) starts.set(id.ident.span.start, id);
  const lexed = T.vmmLexer.tokenize(a.doc.getText());
  const tokens = [...lexed.tokens, ...(lexed.groups.comments ?? [])].sort((x, y) => x.startOffset - y.startOffset);
  const data: number[] = [];
  let line = 0;
  let char = 0;
  for (const t of tokens) {
    const c = classify(t, starts);
    if (!c) continue;
    const pos = a.doc.positionAt(t.startOffset);
    const dl = pos.line - line;
    data.push(dl, dl === 0 ? pos.character - char : pos.character, t.image.length, TOKEN_TYPES.indexOf(c[0]), c[1].reduce((m, x) => m | (1 << TOKEN_MODIFIERS.indexOf(x)), 0));
    line = pos.line;
    char = pos.character;
  }
  return data;
}
