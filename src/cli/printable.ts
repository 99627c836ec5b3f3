/**
 * llama2.c's `safe_printf`: a piece that is a single byte is printed only if it is a printable ASCII
 * character or whitespace. Raw byte tokens (<0x80>…<0xFF>, control bytes) are dropped, so `generate`
 * prints exactly the bytes `run` prints. (The course's own views decode UTF-8 properly instead.)
 */
export function llama2cPrintable(piece: Uint8Array): Uint8Array {
  if (piece.length === 0) return piece;
  if (piece.length === 1) {
    const byte = piece[0];
    const printable = byte >= 0x20 && byte <= 0x7e;
    const whitespace = byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
    if (!(printable || whitespace)) return new Uint8Array(0);
  }
  // printf("%s") stops at the first NUL byte.
  const nul = piece.indexOf(0);
  return nul === -1 ? piece : piece.subarray(0, nul);
}

/**
 * `text` with every control character other than newline and tab shown as U+FFFD: an untrained model's
 * samples are random bytes, and a NUL or an escape sequence would make a Markdown card or a JSON index
 * read as binary.
 */
export function withoutControlCharacters(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '\ufffd');
}
