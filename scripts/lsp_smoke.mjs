#!/usr/bin/env node
// The language server as a package runs it (scripts/consumer_test.sh, on the installed tarball):
// `vmm lsp --stdio` analyses a document over its worker threshold on a worker thread, which must
// load from dist/ (issue #22). Opens such a document (MODEL with 3,000 constants before its data) and a small
// one, and checks: the large one's diagnostics arrive (from the worker), a hover on the small one
// and `shutdown` are answered, and `exit` ends the process with code 0. No dependencies: the
// base protocol's framing by hand.
//
//   node scripts/lsp_smoke.mjs MODEL.vmm VMM_COMMAND [ARGS...]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const [model, command, ...commandArgs] = process.argv.slice(2);
if (!model || !command) {
  console.error('usage: lsp_smoke.mjs MODEL.vmm VMM_COMMAND [ARGS...]');
  process.exit(2);
}
const lines = readFileSync(model, 'utf8').split('\n');
const at = Math.max(0, lines.findIndex((l) => l.startsWith('data')));
const big = [...lines.slice(0, at), ...Array.from({ length: 3000 }, (_, i) => `const C${i} = ${i}  // filler`), ...lines.slice(at)].join('\n');

const child = spawn(command, [...commandArgs, 'lsp', '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
const timer = setTimeout(() => fail('no answer within 120 s'), 120_000);
function fail(why) {
  console.error(`lsp smoke: ${why}`);
  child.kill();
  process.exit(1);
}

const pending = new Map();
let diagnosed;
const diagnostics = new Promise((r) => (diagnosed = r));
let buf = Buffer.alloc(0);
child.stdout.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  for (;;) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const length = Number(/Content-Length: *(\d+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1]);
    if (buf.length < end + 4 + length) return;
    const m = JSON.parse(buf.subarray(end + 4, end + 4 + length).toString('utf8'));
    buf = buf.subarray(end + 4 + length);
    if (m.method === 'textDocument/publishDiagnostics' && m.params.uri === 'file:///smoke/big.vmm') diagnosed(m.params);
    else if (m.id !== undefined && pending.has(m.id)) pending.get(m.id)(m);
  }
});
let nextId = 0;
const send = (m) => {
  const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', ...m }), 'utf8');
  child.stdin.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'latin1'), body]));
};
const request = (method, params) => {
  const id = nextId++;
  send({ id, method, params });
  return new Promise((r) => pending.set(id, r));
};
const open = (uri, text) => send({ method: 'textDocument/didOpen', params: { textDocument: { uri, languageId: 'vmm', version: 1, text } } });

await request('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
open('file:///smoke/small.vmm', 'const D = 4\ndata x : real[D]\n');
open('file:///smoke/big.vmm', big);
const hover = await request('textDocument/hover', { textDocument: { uri: 'file:///smoke/small.vmm' }, position: { line: 1, character: 5 } });
if (!JSON.stringify(hover.result ?? null).includes('real[4]')) fail(`unexpected hover: ${JSON.stringify(hover)}`);
const published = await diagnostics;
if (published.version !== 1 || !Array.isArray(published.diagnostics)) fail(`unexpected diagnostics: ${JSON.stringify(published).slice(0, 200)}`);
const shutdown = await request('shutdown');
if (shutdown.error) fail(`shutdown failed: ${JSON.stringify(shutdown.error)}`);
const code = await new Promise((r) => {
  child.on('exit', r);
  send({ method: 'exit' });
});
clearTimeout(timer);
if (code !== 0) fail(`exit code ${code}`);
console.log(`lsp smoke: ok (${big.length.toLocaleString('en-US')} characters analysed on the worker, ${published.diagnostics.length} diagnostics)`);
