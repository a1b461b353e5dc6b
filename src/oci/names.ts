// Repository names and tags, with the grammar of the OCI distribution spec.

export type RepositoryName = string & { readonly __brand: 'RepositoryName' };
export type Tag = string & { readonly __brand: 'Tag' };

const NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export function isRepositoryName(s: string): s is RepositoryName {
  return s.length > 0 && s.length <= 255 && NAME.test(s);
}

export function isTag(s: string): s is Tag {
  return TAG.test(s);
}

export function describeBadRepositoryName(s: string): string {
  if (s.length === 0) return 'repository name is empty';
  if (s.length > 255) return `repository name is ${s.length} characters long; the limit is 255`;
  if (/[A-Z]/.test(s)) return `repository name "${s}" has upper-case letters; use lower case`;
  return `repository name "${s}" must be lower-case path components of letters and digits separated by "/", with ".", "_", "__" or "-" inside a component`;
}
