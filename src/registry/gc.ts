// Garbage collection, mark and sweep across all registries (the blob store is shared): links to
// content no manifest references, expired upload sessions, then unreferenced blobs past their grace.
import type { BlobStore } from '../storage/blob-store.js';
import type { RegistryMetadataStore } from './metadata.js';

export interface GcReport {
  blobsDeleted: number;
  bytesFreed: number;
  linksPruned: number;
  uploadsExpired: number;
}

export interface GcTimes {
  /** Abandoned upload sessions older than this are removed. */
  uploadTtlMs: number;
  /** Blobs younger than this are never collected (a push may be about to reference them). */
  gcGraceMs: number;
}

export async function collectGarbage(meta: RegistryMetadataStore, blobs: BlobStore, t: GcTimes, now = Date.now()): Promise<GcReport> {
  const report: GcReport = { blobsDeleted: 0, bytesFreed: 0, linksPruned: 0, uploadsExpired: 0 };
  const graceCutoff = new Date(now - t.gcGraceMs).toISOString();
  report.linksPruned = await meta.pruneUnreferencedLinks(graceCutoff);
  const stale = await meta.staleUploads(new Date(now - t.uploadTtlMs).toISOString());
  for (const id of stale) {
    await blobs.abortUpload(id);
    await meta.deleteUpload(id);
    report.uploadsExpired++;
  }
  for await (const u of blobs.listUploads()) {
    // Files with no session row (a crash between the two writes) age out the same way.
    if (u.modifiedAt < now - t.uploadTtlMs && !(await meta.getUpload(u.id))) {
      await blobs.abortUpload(u.id);
      report.uploadsExpired++;
    }
  }
  const marked = await meta.referencedDigests();
  for await (const d of blobs.list()) {
    if (marked.has(d)) continue;
    const info = await blobs.stat(d);
    if (!info || info.modifiedAt > now - t.gcGraceMs) continue;
    // Re-check just before deleting: a push may have linked it since the mark.
    if (await meta.isReferenced(d)) continue;
    await blobs.delete(d);
    report.blobsDeleted++;
    report.bytesFreed += info.size;
  }
  return report;
}
