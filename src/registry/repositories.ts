// Repositories, with no HTTP in them: tag and catalog listing, ACR's repository metadata, changeable
// attributes (locks), and repository deletes that the locks allow.
import type {
  AttributeTarget, ChangeableAttributes, RegistryMetadataStore, RepositoryRecord, TagRecord, Page,
} from './metadata.js';
import { manifestUnknown } from './manifests.js';
import { checkDeletable, nameUnknown } from './rules.js';

export class Repositories {
  constructor(private readonly meta: RegistryMetadataStore) {}

  async listTags(registryId: string, repo: string, n: number | undefined, last: string | undefined): Promise<Page<TagRecord>> {
    if (!(await this.meta.getRepository(registryId, repo))) {
      throw nameUnknown(repo);
    }
    return this.meta.listTags(registryId, repo, n, last);
  }

  async catalog(registryId: string, n: number | undefined, last: string | undefined): Promise<Page<string>> {
    return this.meta.listRepositories(registryId, n, last);
  }

  // ---- ACR metadata

  async repository(registryId: string, repo: string): Promise<RepositoryRecord> {
    const r = await this.meta.getRepository(registryId, repo);
    if (!r) throw nameUnknown(repo);
    return r;
  }

  /** Changes some of the changeable attributes of a repository, manifest or tag; returns them all. */
  async updateAttributes(registryId: string, repo: string, target: AttributeTarget, change: Partial<ChangeableAttributes>): Promise<ChangeableAttributes> {
    const current = await this.attributesOf(registryId, repo, target);
    const next: ChangeableAttributes = { ...current };
    for (const k of ['deleteEnabled', 'writeEnabled', 'readEnabled', 'listEnabled'] as const) {
      const v = change[k];
      if (v !== undefined) next[k] = v;
    }
    await this.meta.setAttributes(registryId, repo, target, next);
    return next;
  }

  private async attributesOf(registryId: string, repo: string, target: AttributeTarget): Promise<ChangeableAttributes> {
    if (target.kind === 'repository') return (await this.repository(registryId, repo)).attributes;
    if (target.kind === 'tag') {
      const t = await this.meta.resolveTag(registryId, repo, target.tag);
      if (!t) throw await manifestUnknown(this.meta, registryId, repo, target.tag);
      return t.attributes;
    }
    const m = await this.meta.getManifest(registryId, repo, target.digest);
    if (!m) throw await manifestUnknown(this.meta, registryId, repo, target.digest);
    return m.attributes;
  }

  async listManifests(registryId: string, repo: string) {
    await this.repository(registryId, repo);
    return this.meta.listManifests(registryId, repo);
  }

  async deleteRepository(registryId: string, repo: string) {
    const cur = await this.meta.getRepository(registryId, repo);
    if (cur) {
      checkDeletable(`repository ${repo}`, cur.attributes);
      for (const m of await this.meta.listManifests(registryId, repo)) checkDeletable(`manifest ${m.digest}`, m.attributes);
      for (const t of (await this.meta.listTags(registryId, repo, undefined, undefined)).items) checkDeletable(`tag ${t.name}`, t.attributes);
    }
    const r = await this.meta.deleteRepository(registryId, repo);
    if (!r) throw nameUnknown(repo);
    return r;
  }
}
