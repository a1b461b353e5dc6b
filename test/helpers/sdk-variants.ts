// The Azure SDK packages the SDK tests run against: the pinned ones (package.json, the oldest the
// README names) and the newest published ones that scripts/install.sh puts in .sdk-latest/ (users
// install @latest). Each variant loads a package by name from its own node_modules.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './berth.js';

export interface SdkVariant {
  label: string;
  /** Why this variant cannot run, when it cannot. */
  skip?: string;
  load<T = any>(pkg: string): Promise<T>;
  version(pkg: string): string;
}

function variant(label: string, root: string): SdkVariant {
  const req = createRequire(join(root, 'package.json'));
  const pkgJson = (pkg: string) => join(root, 'node_modules', pkg, 'package.json');
  return {
    label,
    ...(existsSync(join(root, 'node_modules', '@azure', 'identity')) ? {} : { skip: `no Azure SDK packages in ${root} (bash scripts/install.sh installs them)` }),
    load: async (pkg) => import(pathToFileURL(req.resolve(pkg)).href),
    version: (pkg) => (JSON.parse(readFileSync(pkgJson(pkg), 'utf8')) as { version: string }).version,
  };
}

export const SDK_VARIANTS: SdkVariant[] = [variant('pinned', REPO_ROOT), variant('newest', join(REPO_ROOT, '.sdk-latest'))];
