// Image garbage collection of a Berth server: the runtime's extracted layers, then the pull client's
// content store, each keeping what existing containers use and what was used within the grace period.
// `berth serve` runs it on a timer; `berth container prune-images` (POST /berth/images/prune) at once.
import type { ContentStore } from '../pull/content-store.js';
import type { Runtime } from '../runtime/runtime.js';

export interface ImageGcReport {
  /** Extracted layers of the runtime's cache (removed, kept, bytes freed). */
  layers: { removed: number; kept: number; bytesFreed: number };
  /** Blobs of the pull client's content store (manifests, configs, layers). */
  blobs: { removed: number; kept: number; bytesFreed: number };
  bytesFreed: number;
  graceSeconds: number;
  /** Why a part was not collected (no runtime that can say which images its containers use). */
  skipped?: string;
}

export const DEFAULT_IMAGE_GC_GRACE_MS = 24 * 3600_000;

export class ImageGc {
  private running: Promise<ImageGcReport> | undefined;

  constructor(private readonly o: { store: ContentStore; runtime?: Runtime | undefined; graceMs?: number }) {}

  get graceMs(): number {
    return this.o.graceMs ?? DEFAULT_IMAGE_GC_GRACE_MS;
  }

  /** One collection at a time: a call during a run waits for it and runs again. */
  collect(opts: { graceMs?: number; now?: number } = {}): Promise<ImageGcReport> {
    const prev = this.running ?? Promise.resolve(undefined);
    const next = prev.catch(() => undefined).then(() => this.collectNow(opts));
    this.running = next;
    void next.catch(() => undefined).then(() => { if (this.running === next) this.running = undefined; });
    return next;
  }

  private async collectNow(opts: { graceMs?: number; now?: number }): Promise<ImageGcReport> {
    const graceMs = opts.graceMs ?? this.graceMs;
    const at = opts.now !== undefined ? { now: opts.now } : {};
    const rt = this.o.runtime;
    const report: ImageGcReport = { layers: { removed: 0, kept: 0, bytesFreed: 0 }, blobs: { removed: 0, kept: 0, bytesFreed: 0 }, bytesFreed: 0, graceSeconds: Math.round(graceMs / 1000) };
    if (rt && (!rt.imageReferences || !rt.collectGarbage)) {
      report.skipped = 'the container runtime cannot say which images its containers use; nothing was removed';
      return report;
    }
    // Layers first: a layer removed now no longer needs its blob (the next create extracts it again from a fresh pull).
    if (rt?.collectGarbage) report.layers = await rt.collectGarbage({ graceMs, ...at });
    const keep = rt?.imageReferences ? await rt.imageReferences() : new Set<string>();
    report.blobs = await this.o.store.collectGarbage({ graceMs, keep, ...at });
    report.bytesFreed = report.layers.bytesFreed + report.blobs.bytesFreed;
    return report;
  }
}

/** Parses a grace period: a number with an optional unit s, m, h or d (hours when none), e.g. `24h`, `30m`, `0`. */
export function parseGrace(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/i.exec(text);
  if (!m) throw new Error(`invalid grace period "${text}": use a number with an optional unit s, m, h or d (e.g. 24h, 30m, 0)`);
  const unit = { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000, '': 3600_000 }[m[2]!.toLowerCase() as 's' | 'm' | 'h' | 'd' | ''];
  return Math.round(Number(m[1]) * unit);
}
