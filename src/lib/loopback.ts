// The one rule for "this registry host is on this machine" (Berth speaks plain HTTP to those, as
// docker and containers/image do for localhost): localhost and names under .localhost, 127.0.0.0/8
// and ::1, with or without a port or IPv6 brackets.

export function isLoopbackHost(host: string): boolean {
  // A bare IPv6 address (two colons or more, no brackets) carries no port to strip.
  const bare = !host.startsWith('[') && (host.match(/:/g)?.length ?? 0) > 1;
  const h = (bare ? host : host.replace(/:\d+$/, '')).replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || /^127\./.test(h) || h === '::1';
}
