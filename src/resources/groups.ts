// Resource groups of the subscription.
import type { Db } from '../storage/sqlite.js';
import { nowIso } from '../storage/sqlite.js';
import { invalid, notFound } from '../lib/errors.js';

export interface ResourceGroup {
  id: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  properties: { provisioningState: 'Succeeded' };
  type: 'Microsoft.Resources/resourceGroups';
  managedBy: null;
}

const RG_NAME = /^[-\w._()]{1,90}$/u;

export class ResourceGroups {
  constructor(private readonly db: Db, private readonly subscriptionId: string) {}

  private toGroup(r: { name: string; location: string; tags: string }): ResourceGroup {
    return {
      id: `/subscriptions/${this.subscriptionId}/resourceGroups/${r.name}`, name: r.name, location: r.location,
      tags: JSON.parse(r.tags) as Record<string, string>, properties: { provisioningState: 'Succeeded' },
      type: 'Microsoft.Resources/resourceGroups', managedBy: null,
    };
  }

  /** Creates or updates (az group create is idempotent). */
  createOrUpdate(name: string, location: string, tags: Record<string, string> = {}): { group: ResourceGroup; created: boolean } {
    if (!RG_NAME.test(name) || name.endsWith('.')) {
      throw invalid('InvalidResourceGroup', `Resource group name '${name}' is invalid: use 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'.`);
    }
    if (!location) throw invalid('LocationRequired', 'The location property is required for this definition.');
    const existing = this.get(name, false);
    const loc = location.toLowerCase().replace(/\s+/g, '');
    if (existing) {
      if (existing.location !== loc) {
        throw invalid('InvalidResourceGroupLocation', `Invalid resource group location '${loc}'. The Resource group already exists in location '${existing.location}'.`);
      }
      this.db.prepare('UPDATE resource_groups SET tags = ? WHERE subscription = ? AND name_lower = ?')
        .run(JSON.stringify(tags), this.subscriptionId, name.toLowerCase());
      return { group: this.get(name)!, created: false };
    }
    this.db.prepare('INSERT INTO resource_groups (subscription, name, name_lower, location, tags, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(this.subscriptionId, name, name.toLowerCase(), loc, JSON.stringify(tags), nowIso());
    return { group: this.get(name)!, created: true };
  }

  get(name: string, required = true): ResourceGroup | undefined {
    const r = this.db.prepare('SELECT name, location, tags FROM resource_groups WHERE subscription = ? AND name_lower = ?')
      .get(this.subscriptionId, name.toLowerCase()) as { name: string; location: string; tags: string } | undefined;
    if (!r && required) throw notFound('ResourceGroupNotFound', `Resource group '${name}' could not be found.`);
    return r && this.toGroup(r);
  }

  list(): ResourceGroup[] {
    return (this.db.prepare('SELECT name, location, tags FROM resource_groups WHERE subscription = ? ORDER BY name_lower')
      .all(this.subscriptionId) as Array<{ name: string; location: string; tags: string }>).map((r) => this.toGroup(r));
  }

  /** Deletes the group row; the caller removes the resources in it first. */
  delete(name: string): boolean {
    return this.db.prepare('DELETE FROM resource_groups WHERE subscription = ? AND name_lower = ?')
      .run(this.subscriptionId, name.toLowerCase()).changes > 0;
  }
}
