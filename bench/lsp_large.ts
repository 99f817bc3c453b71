/**
 * The language server while a large document is analysed (issue #22): how soon `vmm lsp --stdio`
 * answers a hover on another (small) document and `shutdown` after a 20k / 40k / 200k-line
 * document is opened or edited, and how soon that document's diagnostics come. One fresh server
 * per run, driven over stdio as an editor drives it; medians over the runs.
 *
 *   node bin/run-ts.mjs bench/lsp_large.ts [--lines 20000,40000,200000] [--runs 3] [--root DIR] [--dist]
 *
 * Per run: open a small document and wait for its diagnostics (the server is warm), then
 *   1. open the large one and at once hover on the small one: "hover" and "diagnostics" (the first
 *      large document also starts the analysis worker);
 *   2. append a line to the large one and at once hover again: "hover (edit)" and "diagnostics
 *      (edit)" (after the server's 150 ms debounce);
 *   3. close it, open it again and at once send `shutdown`: "shutdown"; then `exit`: "exit" (until
 *      the process has ended).
 * `--root DIR` runs DIR/bin/vmm.mjs (another checkout, e.g. an older commit, with node_modules);
 * `--dist` runs the built server (dist/, `npm run build`) instead of the TypeScript sources.
 * The large document is models/vae.vmm with `const Ci = i  // filler` lines (30 characters each).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createProtocolConnection,
  DidChangeTextDocumentNotification,
  DidCloseTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  HoverRequest,
  InitializeRequest,
  PublishDiagnosticsNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-languageserver-protocol/node';

const { values: args } = parseArgs({
  options: {
    lines: { type: 'string', default: '20000,40000,200000' },
    runs: { type: 'string', default: '3' },
    root: { type: 'string', default: join(import.meta.dirname, '..') },
    dist: { type: 'boolean', default: false },
  },
});
const root = resolve(args.root);
const sizes = args.lines.split(',').map(Number);
const runs = Number(args.runs);

function bigModel(n: number): string {
  const lines = readFileSync(join(root, 'models', 'vae.vmm'), 'utf8').split('\n');
  const at = lines.findIndex((l) => l.startsWith('data'));
  return [...lines.slice(0, at), ...Array.from({ length: n }, (_, i) => `const C${i} = ${i}  // filler`), ...lines.slice(at)].join('\n');
}

type Row = Record<'hover' | 'diagnostics' | 'hover (edit)' | 'diagnostics (edit)' | 'shutdown' | 'exit', number>;

async function once(text: string): Promise<Row> {
  const argv = args.dist
    ? ['-e', `import(${JSON.stringify(join(root, 'dist', 'src', 'lsp', 'server.js'))}).then((m) => m.runStdioServer())`]
    : [join(root, 'bin', 'vmm.mjs'), 'lsp', '--stdio'];
  const child = spawn(process.execPath, argv, { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const conn = createProtocolConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  const waits = new Map<string, () => void>();
  conn.onNotification(PublishDiagnosticsNotification.type, (p) => waits.get(`${p.uri} ${p.version}`)?.());
  const diagnostics = (uri: string, version: number) => new Promise<void>((r) => waits.set(`${uri} ${version}`, r));
  conn.listen();
  await conn.sendRequest(InitializeRequest.type, { processId: process.pid, rootUri: null, capabilities: {} });
  const small = 'file:///bench/small.vmm';
  const big = 'file:///bench/big.vmm';
  const smallReady = diagnostics(small, 1);
  await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri: small, languageId: 'vmm', version: 1, text: 'const D = 4\ndata x : real[D]\n' } });
  await smallReady;
  const hover = () => conn.sendRequest(HoverRequest.type, { textDocument: { uri: small }, position: { line: 1, character: 5 } });
  const since = (t: number) => performance.now() - t;
  const timed = async (t: number, p: Promise<unknown>) => (await p, since(t));
  const lastLine = text.split('\n').length - 1;
  const append = (version: number) =>
    conn.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri: big, version },
      contentChanges: [{ range: { start: { line: lastLine, character: 0 }, end: { line: lastLine, character: 0 } }, text: `const E${version} = ${version}\n` }],
    });

  let t = performance.now();
  const d1 = timed(t, diagnostics(big, 1));
  await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri: big, languageId: 'vmm', version: 1, text } });
  const h1 = await timed(t, hover());
  const row: Partial<Row> = { hover: h1, diagnostics: await d1 };

  t = performance.now();
  const d2 = timed(t, diagnostics(big, 2));
  await append(2);
  row['hover (edit)'] = await timed(t, hover());
  row['diagnostics (edit)'] = await d2;

  // Closed and opened again, one line longer (the front end keeps its result for a text it has
  // seen): analysed at once (no debounce), on the worker it had.
  await conn.sendNotification(DidCloseTextDocumentNotification.type, { textDocument: { uri: big } });
  t = performance.now();
  await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri: big, languageId: 'vmm', version: 3, text: `${text}const E3 = 3\n` } });
  row.shutdown = await timed(t, conn.sendRequest(ShutdownRequest.type));
  t = performance.now();
  await conn.sendNotification(ExitNotification.type);
  await exited;
  row.exit = since(t);
  conn.dispose();
  return row as Row;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (ms: number) => (ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`);

const columns: (keyof Row)[] = ['hover', 'shutdown', 'diagnostics', 'hover (edit)', 'diagnostics (edit)', 'exit'];
console.log(`| lines | characters | ${columns.join(' | ')} |`);
console.log(`|---:|---:|${columns.map(() => '---:').join('|')}|`);
for (const n of sizes) {
  const text = bigModel(n);
  const rows: Row[] = [];
  for (let r = 0; r < runs; r++) rows.push(await once(text));
  console.error(`${n} lines: ${rows.map((x) => columns.map((c) => fmt(x[c])).join(', ')).join(' / ')}`);
  console.log(`| ${n.toLocaleString('en-US')} | ${(text.length / 2 ** 20).toFixed(1)} Mi | ${columns.map((c) => fmt(median(rows.map((x) => x[c])))).join(' | ')} |`);
}
