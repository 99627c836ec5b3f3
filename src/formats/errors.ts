/**
 * The one error type every loader throws for bad input. Its message always starts with the file it is
 * about, then says what is wrong, e.g. `model.bin: header says dim = -3; dim must be a positive integer`.
 */
export class FormatError extends Error {
  readonly file: string;

  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'FormatError';
    this.file = file;
  }
}
