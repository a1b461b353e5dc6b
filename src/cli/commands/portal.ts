// `berth portal`: a one-time link that signs a browser in to the portal as the CLI's own identity
// (the local owner, or whoever `berth login` signed in). The code rides in the URL's #fragment, which
// browsers never send to a server, so it lands in no log; it works once, for five minutes.
import type { Command } from 'commander';
import { leaf } from '../command.js';
import type { ArmClient } from '../arm-client.js';

export function portalUrl(server: string, code?: string): string {
  return `${server.replace(/\/+$/, '')}/portal/${code ? `#/sign-in/${code}` : ''}`;
}

export function registerPortalCommand(program: Command, client: () => ArmClient): void {
  leaf<Record<string, never>>(program, 'portal', 'Print a one-time link that signs a browser in to the Berth portal as this CLI\'s identity.',
    (c) => c.addHelpText('after', '\nThe link works once, within 5 minutes. A service principal can also sign in on the portal\'s page with its appId and secret.'),
    async () => {
      const cli = client();
      const r = (await cli.request<{ code: string; expiresOn: string }>('POST', '/portal/sign-in-codes', {}))!;
      const url = portalUrl(cli.ctx.server, r.code);
      return { url, expiresOn: r.expiresOn, portal: portalUrl(cli.ctx.server) };
    }, { table: (v) => [{ Url: (v as { url: string }).url, ExpiresOn: (v as { expiresOn: string }).expiresOn }] });
}
