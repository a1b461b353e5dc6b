// The `berth` command: az-shaped subcommands over Berth's management API, plus `berth serve`.
// Command modules are loaded lazily: a run loads only the module(s) of the command group it names
// (`berth pull ...` never loads the server, the ARM clients of other groups or their dependencies);
// `berth`, `berth --help` and an unknown name load them all, so the listing and suggestions are whole.
import { Command } from 'commander';
import { runProgram } from './command.js';
import type { ArmClient } from './arm-client.js';

type Register = (program: Command, client: () => ArmClient) => void;

/** Each top-level name, the modules that register it (in help order), and what each module exports. */
const GROUPS: Array<{ names: string[]; load: () => Promise<Register[]> }> = [
  { names: ['serve'], load: async () => [(await import('./commands/serve.js')).registerServeCommand] },
  { names: ['group'], load: async () => [(await import('./commands/group.js')).registerGroupCommands] },
  {
    names: ['acr'],
    load: async () => {
      const [acr, access, login, health] = await Promise.all([import('./commands/acr.js'), import('./commands/acr-access.js'), import('./commands/acr-login.js'), import('./commands/acr-health.js')]);
      const sub = (p: Command) => p.commands.find((c) => c.name() === 'acr')!;
      return [acr.registerAcrCommands, (p, c) => access.registerAcrAccessCommands(sub(p), c), (p, c) => login.registerAcrLoginCommand(sub(p), c), (p, c) => health.registerAcrHealthCommand(sub(p), c)];
    },
  },
  { names: ['image'], load: async () => [(await import('./commands/image.js')).registerImageCommands] },
  { names: ['ad'], load: async () => [(await import('./commands/ad.js')).registerAdCommands] },
  { names: ['identity'], load: async () => [(await import('./commands/identity.js')).registerIdentityCommands] },
  { names: ['role'], load: async () => [(await import('./commands/role.js')).registerRoleCommands] },
  { names: ['login', 'logout', 'account'], load: async () => [(await import('./commands/login.js')).registerLoginCommands] },
  { names: ['pull'], load: async () => [(await import('./commands/pull.js')).registerPullCommand] },
  { names: ['keyvault'], load: async () => [(await import('./commands/keyvault.js')).registerKeyvaultCommands] },
  { names: ['vault'], load: async () => [(await import('./commands/vault-admin.js')).registerVaultAdminCommands] },
  { names: ['migrate'], load: async () => [(await import('./commands/migrate.js')).registerMigrateCommand] },
  { names: ['ca'], load: async () => [(await import('./commands/ca.js')).registerCaCommand] },
  { names: ['cloud'], load: async () => [(await import('./commands/cloud.js')).registerCloudCommands] },
  { names: ['portal'], load: async () => [(await import('./commands/portal.js')).registerPortalCommand] },
  {
    names: ['container'],
    load: async () => {
      const [container, prune] = await Promise.all([import('./commands/container.js'), import('./commands/prune-images.js')]);
      return [container.registerContainerCommands, (p, c) => prune.registerPruneImagesCommand(p.commands.find((x) => x.name() === 'container')!, c)];
    },
  },
];

/** The command group `argv` names (its first word after the root options), if it is one. */
function namedGroup(argv: string[]): (typeof GROUPS)[number] | undefined {
  const word = argv.slice(2).find((a) => !a.startsWith('-'));
  return word === undefined ? undefined : GROUPS.find((g) => g.names.includes(word));
}

/** The program with the commands of `argv`'s group, or all of them (no argv, no group named, or an unknown one). */
export async function buildProgram(argv?: string[]): Promise<Command> {
  const program = new Command('berth')
    .description('Berth: run container groups from private registries. Commands mirror az.')
    .version('0.1.0')
    // Root options only before the subcommand, so that subcommands can have their own --version (az keyvault secret show --version).
    .enablePositionalOptions();
  let client: ArmClient | undefined;
  const { ArmClient: Arm } = await import('./arm-client.js');
  const { resolveContext } = await import('./context.js');
  const getClient = () => (client ??= new Arm(resolveContext()));
  const named = argv ? namedGroup(argv) : undefined;
  // `berth --version` needs no command at all.
  const versionOnly = !named && argv !== undefined && argv.slice(2).every((a) => a.startsWith('-')) && argv.slice(2).some((a) => a === '-V' || a === '--version');
  const groups = named ? [named] : versionOnly ? [] : GROUPS;
  const registers = (await Promise.all(groups.map((g) => g.load()))).flat();
  for (const r of registers) r(program, getClient);
  // Client commands trust Berth's CA; the server itself does not change its process-wide TLS trust.
  // Commands that talk only to the management API skip it: ArmClient trusts the CA itself over node:https,
  // and installing undici's dispatcher would load undici (~60-120 ms) for nothing.
  program.hook('preAction', async (_program, action) => {
    if (action.name() !== 'serve' && action.name() !== 'migrate' && !armOnly(action)) await (await import('./trust.js')).trustBerthCa();
  });
  return program;
}

/** Command groups whose every command uses only ArmClient (no undici, no global fetch); anything else trusts via undici. */
// `pull` trusts it only when it asks the server for the CLI's identity (berth-keychain.ts): its registry
// requests go over node:https with their own CAs (--ca-file), and undici is ~20 MB of a pull's memory.
const ARM_ONLY = new Set(['group', 'ad', 'identity', 'role', 'keyvault', 'login', 'logout', 'account', 'container', 'pull']);

function armOnly(action: Command): boolean {
  const path: string[] = [];
  for (let c: Command | null = action; c?.parent; c = c.parent) path.unshift(c.name());
  return ARM_ONLY.has(path[0]!);
}

export async function main(argv: string[]): Promise<void> {
  const code = await runProgram(await buildProgram(argv), argv);
  process.exitCode = code;
}
