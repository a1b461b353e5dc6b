// Docker Hub's names, in one table: the reference name (`docker.io`), the names that mean the same
// server, where its registry API answers, and the key Docker's config files and credential helpers use.
// Pure data: image references, the keychain and the registry client's host rules all read it here.

/** How references name Docker Hub (`busybox` is `docker.io/library/busybox`). */
export const DOCKER_HUB = 'docker.io';

/** Every host name that is Docker Hub (folded into DOCKER_HUB by references and the keychain). */
export const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** The host that serves Docker Hub's registry API. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

/** The server address Docker's credential helpers and config files use for Docker Hub. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';
