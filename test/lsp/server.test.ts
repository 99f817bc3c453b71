/**
 * `vmm lsp --stdio` driven by a real LSP client (vscode-languageserver-protocol over the child's
 * stdin / stdout): initialize, diagnostics on open and on change, hover shapes on models/*.vmm,
 * definition, references, completion, the outline, formatting (equal to `vmm fmt --stdout`),
 * semantic tokens, a file with syntax errors, and a clean shutdown.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CompletionRequest,
  createProtocolConnection,
  DefinitionRequest,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  DocumentFormattingRequest,
  DocumentSymbolRequest,
  ExitNotification,
  HoverRequest,
  InitializedNotification,
  InitializeRequest,
  PublishDiagnosticsNotification,
  ReferencesRequest,
  SemanticTokensRequest,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  type CompletionItem,
  type Diagnostic,
  type DocumentSymbol,
  type Hover,
  type InitializeResult,
  type Location,
  type ProtocolConnection,
  type PublishDiagnosticsParams,
  type TextEdit,
} from 'vscode-languageserver-protocol/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { frontEnd } from '../../src/check/pipeline.ts';
import { familyNames } from '../../src/families/registry.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'vmm.mjs');
const model = (name: string) => readFileSync(join(ROOT, 'models', name), 'utf8');

let child: ChildProcess;
let conn: ProtocolConnection;
let init: InitializeResult;
let stderr = '';
const published: PublishDiagnosticsParams[] = [];
/** Pending `diagnosticsFor` calls; each returns true once it has what it waits for. */
let waiters: (() => boolean)[] = [];

/** Resolves with the first diagnostics published for `uri` (at `version`, if given). */
function diagnosticsFor(uri: string, version?: number): Promise<Diagnostic[]> {
  return new Promise((resolve) => {
    const look = (): boolean => {
      const p = published.find((d) => d.uri === uri && (version === undefined || d.version === version));
      if (p) resolve(p.diagnostics);
      return p !== undefined;
    };
    if (!look()) waiters.push(look);
  });
}

let docs = 0;
/** Opens a document; returns its uri and a TextDocument to compute positions with. */
async function open(text: string, name = `doc${++docs}.vmm`) {
  const uri = `file:///virtual/${name}`;
  await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'vmm', version: 1, text } });
  return { uri, doc: TextDocument.create(uri, 'vmm', 1, text) };
}

/** The position of the `k`-th character of the first occurrence of `needle` (after `from`). */
function pos(doc: TextDocument, needle: string, k = 0, from = 0) {
  const i = doc.getText().indexOf(needle, from);
  if (i < 0) throw new Error(`not found: ${needle}`);
  return doc.positionAt(i + k);
}

async function hoverText(uri: string, doc: TextDocument, needle: string, k = 0): Promise<string> {
  const h = (await conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: pos(doc, needle, k) })) as Hover | null;
  if (!h) return '';
  const c = h.contents;
  return typeof c === 'object' && 'value' in c ? c.value : JSON.stringify(c);
}

beforeAll(async () => {
  child = spawn(process.execPath, [BIN, 'lsp', '--stdio'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  conn = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  conn.onNotification(PublishDiagnosticsNotification.type, (p) => {
    published.push(p);
    waiters = waiters.filter((w) => !w());
  });
  conn.listen();
  init = await conn.sendRequest(InitializeRequest.type, { processId: process.pid, rootUri: pathToFileURL(ROOT).href, capabilities: {} });
  await conn.sendNotification(InitializedNotification.type, {});
});

afterAll(() => {
  conn?.dispose();
  if (child && child.exitCode === null) child.kill();
});

describe('vmm lsp --stdio', () => {
  it('initializes with the features it serves', () => {
    const c = init.capabilities;
    expect(init.serverInfo?.name).toBe('vmm');
    expect(c.hoverProvider).toBe(true);
    expect(c.definitionProvider).toBe(true);
    expect(c.referencesProvider).toBe(true);
    expect(c.documentSymbolProvider).toBe(true);
    expect(c.documentFormattingProvider).toBe(true);
    expect(c.completionProvider).toBeDefined();
    expect(c.semanticTokensProvider?.legend.tokenTypes).toContain('keyword');
  });

  it('publishes every error of a bad model at the right range, notes as related information', async () => {
    // Two independent mistakes: a net applied to the wrong shape, and an unknown name.
    const text = model('vma_omniglot.vmm')
      .replace('let r = g(full[a])', 'let r = g(concat(full[a], x))')
      .replace('latent z ~ Normal(prior(r))', 'latent z ~ Normal(prior(rr))');
    const { uri, doc } = await open(text);
    const diags = await diagnosticsFor(uri);
    expect(diags.map((d) => d.code)).toEqual(['VMM2022', 'VMM2001']);
    const [shape, unknown] = diags as [Diagnostic, Diagnostic];
    const argAt = text.indexOf('concat(full[a], x)');
    expect(shape.range).toEqual({ start: doc.positionAt(argAt), end: doc.positionAt(argAt + 'concat(full[a], x)'.length) });
    expect(shape.severity).toBe(1);
    expect(shape.source).toBe('vmm');
    expect(shape.message).toContain('net `g` expects input [784]');
    expect(shape.message).toContain('real[1568]');
    // The note points at the net's declaration.
    expect(shape.relatedInformation?.[0]?.location.range.start).toEqual(pos(doc, 'net g =', 4));
    expect(shape.relatedInformation?.[0]?.message).toContain('declared here');
    expect(unknown.range.start).toEqual(pos(doc, 'prior(rr)', 6));
    expect(unknown.message).toContain('did you mean `r`');
    // The same diagnostics as `vmm check` (the front end), in the same order.
    expect(diags.map((d) => [d.code, doc.offsetAt(d.range.start), doc.offsetAt(d.range.end), d.message])).toEqual(
      frontEnd(text).diagnostics.map((d) => [d.code, d.span.start, d.span.end, d.message]),
    );
  });

  it('re-checks on change: a shape mistake is underlined before saving', async () => {
    const text = model('vma_omniglot.vmm');
    const { uri, doc } = await open(text);
    expect(await diagnosticsFor(uri, 1)).toEqual([]);
    // Type a mistake: index the entries with the image instead of the address.
    const at = text.indexOf('full[a]') + 'full['.length;
    const range = { start: doc.positionAt(at), end: doc.positionAt(at + 1) };
    await conn.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version: 2 }, contentChanges: [{ range, text: 'x' }] });
    const diags = await diagnosticsFor(uri, 2);
    expect(diags).toHaveLength(1);
    expect(diags[0]!.code).toBe('VMM2023');
    expect(diags[0]!.range).toEqual(range);
    expect(diags[0]!.message).toContain('cat(M + 2)');
  });

  it('hovers a name or an expression with its type and symbolic shape (models/*.vmm)', async () => {
    const omni = await open(model('vma_omniglot.vmm'));
    const full = await hoverText(omni.uri, omni.doc, 'full[a]', 1);
    expect(full).toContain('full : real[M + 2, 784]');
    expect(full).toContain('full[a] : real[784]');
    expect(await hoverText(omni.uri, omni.doc, 'h(entries) @ h(x)', 11)).toContain('h(entries) @ h(x) : real[M + 2]');
    expect(await hoverText(omni.uri, omni.doc, 'stack(mem, dummies)', 13)).toContain('dummies : real[2, 784]');
    const net = await hoverText(omni.uri, omni.doc, 'g(full[a])');
    expect(net).toContain('net g : [784] -> [128]');
    expect(net).toContain('420,352 parameters');
    expect(net).toContain('g(full[a]) : real[128]');
    const site = await hoverText(omni.uri, omni.doc, 'discrete address a', 17);
    expect(site).toContain('a : cat(M + 2)');
    expect(site).toContain('discrete address a ~ Categorical(full)');
    expect(site).toContain('a ~ Categorical(logits: h(entries) @ h(x))');
    expect(await hoverText(omni.uri, omni.doc, 'const D', 6)).toMatch(/const D = 28 \* 28[\s\S]*= 784/);

    const mnist = await open(model('vma_mnist.vmm'));
    expect(await hoverText(mnist.uri, mnist.doc, 'memory mem', 7)).toContain('mem : binary[M, 784]');
    expect(await hoverText(mnist.uri, mnist.doc, 'let r', 4)).toContain('r : real[128]');

    const gmm = await open(model('gmm.vmm'));
    expect(await hoverText(gmm.uri, gmm.doc, 'means[c]', 6)).toContain('c : cat(4)');
    expect(await hoverText(gmm.uri, gmm.doc, 'means[c]', 0)).toContain('means[c] : real[2]');

    const vae = await open(model('vae.vmm'));
    const dec = await hoverText(vae.uri, vae.doc, 'dec(z)');
    expect(dec).toContain('net dec : [32] -> [784]');
    expect(dec).toContain('dec(z) : real[784]');
    const normal = await hoverText(vae.uri, vae.doc, 'Normal(loc', 0);
    expect(normal).toContain('Normal(loc: real, scale: positive)');
    expect(normal).toContain('Normal(loc: E1, scale: E2)');
  });

  it('shows the derived guide on a site of a model without a guide block', async () => {
    const text = model('vae.vmm').replace(/guide \{[^}]*\}/, '');
    const { uri, doc } = await open(text);
    const h = await hoverText(uri, doc, 'latent z :', 7);
    expect(h).toContain('z : real[32]');
    expect(h).toContain('in the derived guide');
    expect(h).toMatch(/z ~ Normal\(/);
  });

  it('goes to the definition and finds the references of a name', async () => {
    const { uri, doc } = await open(model('vma_omniglot.vmm'));
    const def = (await conn.sendRequest(DefinitionRequest.type, { textDocument: { uri }, position: pos(doc, 'stack(mem, dummies)', 12) })) as Location;
    expect(def.range).toEqual({ start: pos(doc, 'param dummies', 6), end: pos(doc, 'param dummies', 13) });
    const sizeDef = (await conn.sendRequest(DefinitionRequest.type, { textDocument: { uri }, position: pos(doc, 'binary[M, D]', 7) })) as Location;
    expect(sizeDef.range.start).toEqual(pos(doc, 'size M', 5));
    const refs = (await conn.sendRequest(ReferencesRequest.type, { textDocument: { uri }, position: pos(doc, 'net h =', 4), context: { includeDeclaration: true } })) as Location[];
    const text = doc.getText();
    const hx = text.indexOf('h(x)');
    const expected = [text.indexOf('net h =') + 4, text.indexOf('h(entries)'), hx, text.indexOf('h(x)', hx + 1)];
    expect(expected[3]).toBeGreaterThan(hx);
    expect(refs.map((r) => doc.offsetAt(r.range.start))).toEqual(expected);
    // A guide site is the model's latent: references of `a` include the guide's `a ~ ...` and `entries[a]`.
    const a = (await conn.sendRequest(ReferencesRequest.type, { textDocument: { uri }, position: pos(doc, 'full[a]', 5), context: { includeDeclaration: false } })) as Location[];
    expect(a.map((r) => doc.offsetAt(r.range.start))).toEqual([text.indexOf('full[a]') + 5, text.indexOf('  a ~') + 2, text.indexOf('entries[a]') + 8]);
  });

  it('completes distributions after `~`, layers in a net and the declared names', async () => {
    const text = 'const D = 4\ndata x : real[D]\nnet f = \nlatent z ~ \n';
    const { uri, doc } = await open(text);
    const list = async (p: { line: number; character: number }) =>
      (await conn.sendRequest(CompletionRequest.type, { textDocument: { uri }, position: p })) as CompletionItem[];
    const sorted = (items: CompletionItem[]) => [...items].sort((x, y) => (x.sortText ?? x.label).localeCompare(y.sortText ?? y.label)).map((i) => i.label);
    const afterTilde = await list(pos(doc, 'latent z ~ ', 11));
    // Every distribution family of the registry first, with its parameters.
    const dists = familyNames();
    expect(dists).toEqual(expect.arrayContaining(['Categorical', 'Bernoulli', 'Normal']));
    expect(sorted(afterTilde).slice(0, dists.length).sort()).toEqual([...dists].sort());
    expect(afterTilde.find((i) => i.label === 'Categorical')?.documentation).toMatchObject({ value: expect.stringContaining('Categorical(logits: E)') });
    const normal = afterTilde.find((i) => i.label === 'Normal');
    expect(normal?.documentation).toMatchObject({ value: expect.stringContaining('Normal(loc: real, scale: positive)') });
    const x = afterTilde.find((i) => i.label === 'x');
    expect(x?.detail).toBe('real[4]');
    const inNet = await list(pos(doc, 'net f = ', 8));
    const linear = inNet.find((i) => i.label === 'linear');
    expect(linear?.insertText).toBe('linear(${1:IN}, ${2:OUT})');
    expect(inNet.map((i) => i.label)).toContain('conv2d');
    const atStart = await list({ line: 4, character: 0 });
    expect(sorted(atStart).slice(0, 15).sort()).toEqual(
      ['address', 'const', 'data', 'discrete', 'guide', 'latent', 'let', 'memory', 'model', 'net', 'neural', 'observe', 'param', 'size', 'train'],
    );
  });

  it('lists the declarations as an outline', async () => {
    const { uri } = await open(model('vma_omniglot.vmm'));
    const syms = (await conn.sendRequest(DocumentSymbolRequest.type, { textDocument: { uri } })) as DocumentSymbol[];
    expect(syms.map((s) => s.name)).toEqual(['vma_omniglot', 'D', 'Z', 'H', 'M', 'x', 'mem', 'dummies', 'h', 'g', 'prior', 'enc', 'dec', 'full', 'a', 'r', 'z', 'guide', 'train']);
    expect(syms.find((s) => s.name === 'full')?.detail).toBe('real[M + 2, 784]');
    expect(syms.find((s) => s.name === 'guide')?.children?.map((c) => c.name)).toEqual(['entries', 'a', 'z']);
  });

  it('formats a document exactly as `vmm fmt` does', async () => {
    const messy = model('gmm.vmm').replace('const K = 4', 'const   K=4').replace('c ~ Categorical(logits: q_c(x))', 'c~Categorical( logits : q_c( x ) )');
    const { uri, doc } = await open(messy);
    const edits = (await conn.sendRequest(DocumentFormattingRequest.type, { textDocument: { uri }, options: { tabSize: 2, insertSpaces: true } })) as TextEdit[];
    expect(edits.length).toBeGreaterThan(0);
    const formatted = TextDocument.applyEdits(doc, edits);
    const dir = mkdtempSync(join(tmpdir(), 'vmm-lsp-'));
    writeFileSync(join(dir, 'messy.vmm'), messy);
    const fmt = spawnSync(process.execPath, [BIN, 'fmt', '--stdout', join(dir, 'messy.vmm')], { encoding: 'utf8' });
    expect(fmt.status).toBe(0);
    expect(formatted).toBe(fmt.stdout);
    expect(formatted).not.toBe(messy);
  });

  it('classifies tokens semantically', async () => {
    const text = 'const D = 4 // four\ndata x : real[D]\n';
    const { uri } = await open(text);
    const r = (await conn.sendRequest(SemanticTokensRequest.type, { textDocument: { uri } })) as { data: number[] };
    const legend = init.capabilities.semanticTokensProvider!.legend;
    const out: string[] = [];
    let line = 0;
    let char = 0;
    for (let i = 0; i < r.data.length; i += 5) {
      const [dl, dc, len, type, mods] = r.data.slice(i, i + 5) as [number, number, number, number, number];
      line += dl;
      char = dl ? dc : char + dc;
      const modNames = legend.tokenModifiers.filter((_, b) => mods & (1 << b));
      out.push(`${line}:${char}:${text.split('\n')[line]!.slice(char, char + len)}:${legend.tokenTypes[type]}${modNames.length ? `.${modNames.join('.')}` : ''}`);
    }
    expect(out).toEqual([
      '0:0:const:keyword',
      '0:6:D:variable.declaration.readonly',
      '0:8:=:operator',
      '0:10:4:number',
      '0:12:// four:comment',
      '1:0:data:keyword',
      '1:5:x:parameter.declaration',
      '1:9:real:type',
      '1:14:D:variable.readonly',
    ]);
  });

  it('still hovers and completes the parts of a file with syntax errors', async () => {
    const text = 'const D = 4\ndata x : real[D]\nnet f = mlp(D, 8, 2)\nlet y = f(x) +\nlet w = f(x)\nlatent z ~ Normal(f(\n';
    const { uri, doc } = await open(text);
    const diags = await diagnosticsFor(uri);
    expect(diags.some((d) => String(d.code).startsWith('VMM1'))).toBe(true);
    expect(await hoverText(uri, doc, 'let w', 4)).toContain('w : real[2]');
    expect(await hoverText(uri, doc, 'f(x)\nlatent', 0)).toContain('net f : [4] -> [2]');
    const items = (await conn.sendRequest(CompletionRequest.type, { textDocument: { uri }, position: pos(doc, 'Normal(f(', 9) })) as CompletionItem[];
    expect(items.map((i) => i.label)).toEqual(expect.arrayContaining(['x', 'w', 'D', 'f']));
  });

  it('shuts down and exits cleanly', async () => {
    await conn.sendRequest(ShutdownRequest.type);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await conn.sendNotification(ExitNotification.type);
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  });
});
