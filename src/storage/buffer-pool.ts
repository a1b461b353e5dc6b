// 256 KiB buffers shared by the blob store's upload writer and file sender: a transfer takes two and
// gives them back, so moving a blob allocates nothing per chunk (each allocation is external memory
// that V8 counts towards its next full collection: a fresh buffer per read meant a full GC every ~64 MB
// moved). 256 KiB: file writes of 1 MiB cost up to 5× the kernel CPU of 256 KiB ones here (ext4, large
// folios), smaller ones cost more syscalls.
export const BUFFER_BYTES = 256 * 1024;
/** Buffers kept for reuse between transfers (the rest are left to the GC). */
const POOL_MAX = 64;
const pool: Buffer[] = [];

export function acquireBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(BUFFER_BYTES);
}

/** Returns a buffer nothing refers to any more (no write or read in flight). */
export function releaseBuffer(b: Buffer | undefined): void {
  if (b && b.length === BUFFER_BYTES && pool.length < POOL_MAX) pool.push(b);
}
