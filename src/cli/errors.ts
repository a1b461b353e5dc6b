// Errors the CLI prints as "ERROR: ..." with az's exit codes: 1 error, 2 usage, 3 resource not found.
export class CliError extends Error {
  constructor(message: string, readonly exitCode: 1 | 2 | 3 = 1) {
    super(message);
  }
}
