// ACI's synchronous image check of a container group's create (and restart): every image is checked
// with the group's credentials while the request is accepted, and any failure refuses it with
// InaccessibleImage (ACI's sentence plus Berth's diagnosis) and leaves nothing behind. No HTTP here.
import type { Keychain } from '../keychain/keychain.js';
import { KeychainError } from '../keychain/keychain.js';
import type { Logger } from '../lib/logger.js';
import { invalid } from '../lib/errors.js';
import { diagnosePull } from '../pull/diagnosis.js';
import type { ImagePuller, PulledImage, PullOptions } from '../pull/types.js';
import { PullError } from '../pull/types.js';
import { groupPullContext } from './pull-hints.js';
import type { GroupSpec } from './spec.js';
import type { StoredGroup } from './store.js';

/**
 * Optional capability of an ImagePuller: check that an image can be pulled with a keychain (resolve
 * the manifest) without downloading its layers. Used for ACI's synchronous image check on create.
 */
export interface ImageAccessChecker {
  check(reference: string, opts: PullOptions): Promise<void>;
}
const hasCheck = (p: ImagePuller): p is ImagePuller & ImageAccessChecker => typeof (p as Partial<ImageAccessChecker>).check === 'function';

export const inaccessibleSentence = (image: string, group: string) =>
  `The image '${image}' in container group '${group}' is not accessible. Please check the image and registry credential.`;

export interface ImageCheckDeps {
  puller: ImagePuller;
  log: Logger;
  /** The keychain the group's pulls use (throws KeychainError for a credential that cannot be used). */
  keychain(spec: GroupSpec, g: { resourceGroup: string; name: string }): Keychain | Promise<Keychain>;
  /** Removes the group's system-assigned identity (made for a create that is refused). */
  dropSystemIdentity(g: { resourceGroup: string; name: string }): Promise<void>;
}

/**
 * ACI checks image access while it accepts the create: every image is checked with the group's
 * credentials (manifest and config fetched, layer blobs HEADed: no layer is downloaded in the
 * request; the reconciler pulls); any failure fails the create with InaccessibleImage and leaves
 * nothing behind. A puller without that check pulls the image here instead.
 */
export async function checkImages(d: ImageCheckDeps, spec: GroupSpec, g: { resourceGroup: string; name: string }, keepSystemIdentity: boolean, previous?: StoredGroup) {
  const puller = d.puller;
  const systemWanted = spec.identity?.type.includes('SystemAssigned') ?? false;
  const out = new Map<string, { image: PulledImage; started: Date; finished: Date } | undefined>();
  const failures: Array<{ image: string; error: unknown }> = [];
  try {
    let keychain;
    try {
      keychain = await d.keychain(spec, g);
    } catch (e) {
      if (e instanceof KeychainError) throw invalid('InvalidRegistryCredential', `${e.message}.`);
      throw e;
    }
    const byImage = new Map<string, Promise<{ image: PulledImage; started: Date; finished: Date } | undefined>>();
    const checker = hasCheck(puller) ? puller : undefined;
    for (const c of spec.containers) {
      if (!byImage.has(c.image)) {
        const started = new Date();
        // A puller that can check access without downloading (manifest, config, layer HEADs) keeps the PUT quick; the
        // reconciler then pulls. Otherwise the image is pulled now and handed to the reconciler.
        byImage.set(c.image, checker
          ? checker.check(c.image, { keychain }).then(() => undefined)
          : puller.pull(c.image, { keychain }).then((image) => ({ image, started, finished: new Date() })));
      }
    }
    for (const [image, p] of byImage) {
      try {
        const r = await p;
        for (const c of spec.containers) if (c.image === image) out.set(c.name, r);
      } catch (error) {
        failures.push({ image, error });
      }
    }
  } finally {
    if (systemWanted && !keepSystemIdentity && (failures.length > 0 || out.size < spec.containers.length)) {
      await d.dropSystemIdentity(g);
    }
  }
  const previousEvents = previous ? previous.spec.containers.map((c) => ({ image: c.image, events: previous.state.containers[c.name]?.events ?? [] })) : undefined;
  const diagnose = (f: { image: string; error: unknown }) => diagnosePull(f.error, groupPullContext(f.error, {
    spec, resourceGroup: g.resourceGroup, image: f.image, freshSystemIdentity: systemWanted && !keepSystemIdentity, ...(previousEvents ? { previousEvents } : {}) }));
  if (failures.length === 1) {
    const f = failures[0]!;
    d.log.info('container group create or restart refused: image not accessible', { group: g.name, image: f.image, code: f.error instanceof PullError ? f.error.code : 'UNKNOWN' });
    throw invalid('InaccessibleImage', `${inaccessibleSentence(f.image, g.name)} ${diagnose(f)}`);
  }
  if (failures.length > 1) {
    throw invalid('MultipleErrorsOccurred', `Multiple error occurred: ${failures.map((f) => `'BadRequest':'InaccessibleImage':'${inaccessibleSentence(f.image, g.name)} ${diagnose(f)}'`).join(';')}.`);
  }
  return out;
}
