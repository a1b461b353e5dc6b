// Resource groups of the subscription.
import type { Sql } from '../storage/sql/sql.js';
import { nowIso } from '../lib/time.js';
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

interface Row { name: string; location: string; tags: string }

const RG_NAME = /^[-\w._()]{1,90}$/u;

export class ResourceGroups {
  constructor(private readonly db: Sql, private readonly subscriptionId: string) {}

  private toGroup(r: Row): ResourceGroup {
    return {
      id: `/subscriptions/${this.subscriptionId}/resourceGroups/${r.name}`, name: r.name, location: r.location,
      tags: JSON.parse(r.tags) as Record<string, string>, properties: { provisioningState: 'Succeeded' },
      type: 'Microsoft.Resources/resourceGroups', managedBy: null,
    };
  }

  /** Creates or updates (az group create is idempotent). */
  async createOrUpdate(name: string, location: string, tags: Record<string, string> = {}): Promise<{ group: ResourceGroup; created: boolean }> {
    if (!RG_NAME.test(name) || name.endsWith('.')) {
      throw invalid('InvalidResourceGroup', `Resource group name '${name}' is invalid: use 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'.`);
    }
    if (!location) throw invalid('LocationRequired', 'The location property is required for this definition.');
    const loc = location.toLowerCase().replace(/\s+/g, '');
    let existing = await this.get(name, false);
    if (!existing) {
      // A create racing this one (another request, another replica) makes this an update of its group.
      const ins = await this.db.run(`INSERT INTO resource_groups (subscription, name, name_lower, location, tags, created_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (subscription, name_lower) DO NOTHING`, [this.subscriptionId, name, name.toLowerCase(), loc, JSON.stringify(tags), nowIso()]);
      if (ins.changes > 0) return { group: await this.get(name), created: true };
      existing = await this.get(name);
    }
    if (existing.location !== loc) {
      throw invalid('InvalidResourceGroupLocation', `Invalid resource group location '${loc}'. The Resource group already exists in location '${existing.location}'.`);
    }
    await this.db.run('UPDATE resource_groups SET tags = ? WHERE subscription = ? AND name_lower = ?', [JSON.stringify(tags), this.subscriptionId, name.toLowerCase()]);
    return { group: await this.get(name), created: false };
  }

  /** The group; with `required` (the default) a missing one is ResourceGroupNotFound, else undefined. */
  get(name: string, required?: true): Promise<ResourceGroup>;
  get(name: string, required: boolean): Promise<ResourceGroup | undefined>;
  async get(name: string, required = true): Promise<ResourceGroup | undefined> {
    const r = await this.db.get<Row>('SELECT name, location, tags FROM resource_groups WHERE subscription = ? AND name_lower = ?', [this.subscriptionId, name.toLowerCase()]);
    if (!r && required) throw notFound('ResourceGroupNotFound', `Resource group '${name}' could not be found.`);
    return r && this.toGroup(r);
  }

  async list(): Promise<ResourceGroup[]> {
    return (await this.db.all<Row>('SELECT name, location, tags FROM resource_groups WHERE subscription = ? ORDER BY name_lower', [this.subscriptionId])).map((r) => this.toGroup(r));
  }

  /** Deletes the group row; the caller removes the resources in it first. */
  async delete(name: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM resource_groups WHERE subscription = ? AND name_lower = ?', [this.subscriptionId, name.toLowerCase()])).changes > 0;
  }
}
