// The `berth` command: az-shaped subcommands over Berth's management API, plus `berth serve`.
import { Command } from 'commander';
import { runProgram } from './command.js';
import { ArmClient } from './arm-client.js';
import { resolveContext } from './context.js';
import { registerGroupCommands } from './commands/group.js';
import { registerAcrCommands } from './commands/acr.js';
import { registerServeCommand } from './commands/serve.js';
import { registerImageCommands } from './commands/image.js';
import { registerAcrAccessCommands } from './commands/acr-access.js';
import { registerAcrLoginCommand } from './commands/acr-login.js';
import { registerAcrHealthCommand } from './commands/acr-health.js';
import { registerAdCommands } from './commands/ad.js';
import { registerIdentityCommands } from './commands/identity.js';
import { registerRoleCommands } from './commands/role.js';
import { registerLoginCommands } from './commands/login.js';
import { registerPullCommand } from './commands/pull.js';
import { registerKeyvaultCommands } from './commands/keyvault.js';
import { registerVaultAdminCommands } from './commands/vault-admin.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerCaCommand } from './commands/ca.js';
import { registerCloudCommands } from './commands/cloud.js';
import { registerPortalCommand } from './commands/portal.js';
import { trustBerthCa } from './trust.js';
import { registerContainerCommands } from './commands/container.js';
import { registerPruneImagesCommand } from './commands/prune-images.js';

export function buildProgram(): Command {
  const program = new Command('berth')
    .description('Berth: run container groups from private registries. Commands mirror az.')
    .version('0.1.0')
    // Root options only before the subcommand, so that subcommands can have their own --version (az keyvault secret show --version).
    .enablePositionalOptions();
  let client: ArmClient | undefined;
  const getClient = () => (client ??= new ArmClient(resolveContext()));
  registerServeCommand(program);
  registerGroupCommands(program, getClient);
  registerAcrCommands(program, getClient);
  registerAcrAccessCommands(program.commands.find((c) => c.name() === 'acr')!, getClient);
  registerAcrLoginCommand(program.commands.find((c) => c.name() === 'acr')!, getClient);
  registerAcrHealthCommand(program.commands.find((c) => c.name() === 'acr')!, getClient);
  registerImageCommands(program, getClient);
  registerAdCommands(program, getClient);
  registerIdentityCommands(program, getClient);
  registerRoleCommands(program, getClient);
  registerLoginCommands(program, getClient);
  registerPullCommand(program, getClient);
  registerKeyvaultCommands(program, getClient);
  registerVaultAdminCommands(program);
  registerMigrateCommand(program);
  registerCaCommand(program);
  registerCloudCommands(program);
  registerPortalCommand(program, getClient);
  // Client commands trust Berth's CA; the server itself does not change its process-wide TLS trust.
  // Commands that talk only to the management API skip it: ArmClient trusts the CA itself over node:https,
  // and installing undici's dispatcher would load undici (~60-120 ms) for nothing.
  program.hook('preAction', async (_program, action) => {
    if (action.name() !== 'serve' && action.name() !== 'migrate' && !armOnly(action)) await trustBerthCa();
  });
  registerContainerCommands(program, getClient);
  registerPruneImagesCommand(program.commands.find((c) => c.name() === 'container')!, getClient);
  return program;
}

/** Command groups whose every command uses only ArmClient (no undici, no global fetch); anything else trusts via undici. */
const ARM_ONLY = new Set(['group', 'ad', 'identity', 'role', 'keyvault', 'login', 'logout', 'account', 'container']);

function armOnly(action: Command): boolean {
  const path: string[] = [];
  for (let c: Command | null = action; c?.parent; c = c.parent) path.unshift(c.name());
  return ARM_ONLY.has(path[0]!);
}

export async function main(argv: string[]): Promise<void> {
  const code = await runProgram(buildProgram(), argv);
  process.exitCode = code;
}
