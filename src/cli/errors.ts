// Errors the CLI prints as "ERROR: ..." with az's exit codes: 1 error, 2 usage, 3 resource not found
// (and `container exec`'s, which is the remote command's own). `code` is the server's error code when
// the error is its answer (ARM's `error.code`), for a command that handles one refusal itself.
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number = 1, readonly code?: string) {
    super(message);
  }
}
