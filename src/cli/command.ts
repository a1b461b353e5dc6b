// Global CLI conventions, implemented once: --query, -o/--output, --only-show-errors, --verbose,
// ERROR:/WARNING: on stderr, az's exit codes. Every leaf command is defined through leaf().
import { Command, Option } from 'commander';
import { applyQuery, formatOutput, parseOutputFormat } from './output.js';
import { CliError } from './errors.js';

export interface GlobalOptions {
  query?: string;
  output: string;
  onlyShowErrors?: boolean;
  verbose?: boolean;
}

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Prints "WARNING: ..." unless --only-show-errors. */
  warn: (s: string) => void;
  onlyShowErrors: boolean;
}

export type LeafAction<O> = (opts: O & GlobalOptions, io: Io, args: string[]) => Promise<unknown>;

export interface LeafSpec {
  /** Table transformer used for -o table when no --query is given. */
  table?: (v: unknown) => unknown;
}

export function addGlobals(cmd: Command): Command {
  return cmd
    .addOption(new Option('--query <jmespath>', 'JMESPath query string. See http://jmespath.org/ for more information and examples.'))
    .addOption(new Option('-o, --output <format>', 'Output format: json, jsonc, none, table, tsv, yaml, yamlc.').default('json'))
    .addOption(new Option('--only-show-errors', 'Only show errors, suppressing warnings.'))
    .addOption(new Option('--verbose', 'Increase logging verbosity.'));
}

export function leaf<O>(parent: Command, name: string, description: string, build: (c: Command) => Command,
  action: LeafAction<O>, spec: LeafSpec = {}): Command {
  const cmd = addGlobals(build(parent.command(name).description(description)));
  cmd.action(async (...argv: unknown[]) => {
    const c = argv[argv.length - 1] as Command;
    const opts = c.opts() as O & GlobalOptions;
    const args = c.args;
    const io: Io = {
      stdout: (s) => process.stdout.write(s),
      stderr: (s) => process.stderr.write(s),
      warn: (s) => { if (!opts.onlyShowErrors) process.stderr.write(`WARNING: ${s}\n`); },
      onlyShowErrors: Boolean(opts.onlyShowErrors),
    };
    if (opts.onlyShowErrors && opts.verbose) throw new CliError("--only-show-errors can't be used together with --debug or --verbose", 2);
    const format = (() => {
      try { return parseOutputFormat(opts.output); } catch (e) { throw new CliError((e as Error).message, 2); }
    })();
    let result = await action(opts, io, args);
    if (result === undefined) return;
    let queryActive = false;
    if (opts.query) {
      try {
        result = applyQuery(result, opts.query);
      } catch (e) {
        throw new CliError((e as Error).message, 2);
      }
      queryActive = true;
    }
    try {
      io.stdout(formatOutput(result, format, { queryActive, ...(spec.table ? { tableTransformer: spec.table } : {}) }));
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  });
  return cmd;
}

/** Runs the program, turning every failure into "ERROR: ..." and an exit code. */
export async function runProgram(program: Command, argv: string[]): Promise<number> {
  program.exitOverride();
  program.configureOutput({
    writeErr: (s) => process.stderr.write(s.startsWith('error: ') ? `ERROR: ${s.slice(7)}` : s),
  });
  const applyRecursively = (c: Command) => {
    c.exitOverride();
    c.showSuggestionAfterError(true);
    c.configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error: ') ? `ERROR: ${s.slice(7)}` : s) });
    c.commands.forEach(applyRecursively);
  };
  applyRecursively(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    if (e instanceof CliError) {
      process.stderr.write(`ERROR: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`ERROR: ${(e as Error)?.message ?? String(e)}\n`);
    if (process.env.BERTH_DEBUG) process.stderr.write(String((e as Error)?.stack) + '\n');
    return 1;
  }
}

export function parseBool(flag: string): (v: string) => boolean {
  return (v: string) => {
    const s = v.toLowerCase();
    if (['true', 'yes', '1', 'on'].includes(s)) return true;
    if (['false', 'no', '0', 'off'].includes(s)) return false;
    throw new CliError(`argument ${flag}: invalid value '${v}': use true or false`, 2);
  };
}

export function parseTags(list: string[] | undefined): Record<string, string> | undefined {
  if (!list) return undefined;
  const out: Record<string, string> = {};
  for (const t of list) {
    if (t === '') continue;
    const i = t.indexOf('=');
    if (i < 0) out[t] = '';
    else out[t.slice(0, i)] = t.slice(i + 1);
  }
  return out;
}
