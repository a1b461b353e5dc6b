// The timestamp every store writes: an ISO 8601 UTC string (what ARM shows as createdAt and friends).
export function nowIso(): string {
  return new Date().toISOString();
}
