/**
 * The base protocol's framing (`Content-Length: N\r\n\r\n` then N bytes of JSON), read so that a
 * malformed message costs that message only (issue #22). vscode-jsonrpc's stream reader reports a
 * bad header and then reads on from wherever it stopped: after `Content-Length: abc`, `-5`, a header
 * without Content-Length or a stray blank line, every later header was glued to the previous body
 * and the server never understood another message, `shutdown` and `exit` included.
 *
 * Here a header block must carry one Content-Length of decimal digits, at most MAX_MESSAGE_BYTES;
 * empty lines before a header are skipped; anything else is reported (`onSkipped`) and the reader
 * resynchronises at the next `Content-Length:`. A body that is not JSON is reported and dropped.
 */
import type { Readable } from 'node:stream';
import { AbstractMessageReader, Disposable, type DataCallback, type Message, type MessageReader } from 'vscode-languageserver/node';

/** The largest message read (a bigger Content-Length is skipped as malformed): 64 MiB. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
const CONTENT_LENGTH = /^content-length$/i;
/** The longest header block waited for: a block longer than this without its end is junk. */
const MAX_HEADER_BYTES = 8192;

export class ResyncingMessageReader extends AbstractMessageReader implements MessageReader {
  private buffer: Buffer = Buffer.alloc(0);
  /** The body length of the frame being read, once its header has been read. */
  private bodyLength = -1;
  private callback: DataCallback | undefined;

  constructor(
    private readonly input: Readable,
    /** Told about each skipped piece of input (the server logs it to stderr). */
    private readonly onSkipped: (why: string) => void = () => undefined,
  ) {
    super();
  }

  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    const onData = (chunk: Buffer) => this.onData(chunk);
    const onError = (e: Error) => this.fireError(e);
    const onClose = () => this.fireClose();
    this.input.on('data', onData);
    this.input.on('error', onError);
    this.input.on('end', onClose);
    this.input.on('close', onClose);
    return Disposable.create(() => {
      this.input.off('data', onData);
      this.input.off('error', onError);
      this.input.off('end', onClose);
      this.input.off('close', onClose);
    });
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    for (;;) {
      if (this.bodyLength < 0 && !this.readHeader()) return;
      if (this.buffer.length < this.bodyLength) return;
      const body = this.buffer.subarray(0, this.bodyLength);
      this.buffer = this.buffer.subarray(this.bodyLength);
      this.bodyLength = -1;
      let message: unknown;
      try {
        message = JSON.parse(body.toString('utf8'));
      } catch {
        this.onSkipped(`a message body that is not JSON (${body.length} bytes)`);
        continue;
      }
      if (message === null || typeof message !== 'object' || Array.isArray(message)) {
        this.onSkipped('a message body that is not a JSON object');
        continue;
      }
      this.callback?.(message as Message);
    }
  }

  /** Reads one header block into `bodyLength`; false when more input is needed. */
  private readHeader(): boolean {
    for (;;) {
      // Blank lines between messages are tolerated.
      let start = 0;
      while (this.buffer.length >= start + 2 && this.buffer[start] === 0x0d && this.buffer[start + 1] === 0x0a) start += 2;
      if (start) this.buffer = this.buffer.subarray(start);
      const end = this.buffer.indexOf(HEADER_END);
      if (end < 0) {
        if (this.buffer.length > MAX_HEADER_BYTES) this.resync('a header block with no end');
        return false;
      }
      const block = this.buffer.subarray(0, end).toString('latin1');
      const length = headerLength(block);
      if (typeof length === 'number') {
        this.buffer = this.buffer.subarray(end + HEADER_END.length);
        this.bodyLength = length;
        return true;
      }
      if (length.wellFormed) {
        // A header of proper `name: value` lines whose values are wrong: skip it whole.
        this.onSkipped(`${length.why}; skipped ${end + HEADER_END.length} bytes`);
        this.buffer = this.buffer.subarray(end + HEADER_END.length);
      } else this.resync(length.why);
    }
  }

  /**
   * Drops input up to the next `Content-Length:` after the start; with none, everything but a tail
   * that may be the start of one (always at least one byte, so the reader moves on).
   */
  private resync(why: string): void {
    const text = this.buffer.toString('latin1').toLowerCase();
    const key = 'content-length:';
    const next = text.indexOf(key, 1);
    let cut = next;
    if (next < 0) {
      let keep = Math.min(key.length - 1, text.length - 1);
      while (keep > 0 && !key.startsWith(text.slice(text.length - keep))) keep--;
      cut = text.length - keep;
    }
    this.onSkipped(`${why}; skipped ${cut} bytes`);
    this.buffer = this.buffer.subarray(cut);
  }
}

/**
 * The Content-Length of a header block, or why the block is malformed and whether its lines are
 * proper `name: value` header fields (then it is skipped whole; else junk precedes a header, and
 * the reader resynchronises at the next `Content-Length:` inside it).
 */
function headerLength(block: string): number | { why: string; wellFormed: boolean } {
  const lines = block.split('\r\n');
  // Proper fields, and no Content-Length glued to the end of something else.
  const wellFormed = lines.every((l) => /^[A-Za-z0-9-]+:[ \t]*[\x20-\x7e]*$/.test(l) && l.toLowerCase().lastIndexOf('content-length:') <= 0);
  const bad = (why: string) => ({ why, wellFormed });
  let length: number | undefined;
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return bad(`a header line without 'name: value' (${JSON.stringify(line.slice(0, 40))})`);
    if (!CONTENT_LENGTH.test(line.slice(0, colon).trim())) continue;
    const value = line.slice(colon + 1).trim();
    if (!/^\d{1,15}$/.test(value)) return bad(`Content-Length ${JSON.stringify(value.slice(0, 20))} is not a number of bytes`);
    if (length !== undefined) return bad('two Content-Length headers');
    length = Number(value);
  }
  if (length === undefined) return bad('a header without Content-Length');
  if (length > MAX_MESSAGE_BYTES) return bad(`Content-Length ${length} is over the limit of ${MAX_MESSAGE_BYTES} bytes`);
  return length;
}
