#!/usr/bin/env bash
# Installs what Berth and its tests need on a fresh Debian machine: the OS packages (as root, with
# apt-get) and the npm dependencies from the lockfile (which also builds dist/).
set -euo pipefail
cd "$(dirname "$0")/.."

# libnss-myhostname resolves names under .localhost to loopback (vaults by name: <vault>.vault.localhost);
# azure-cli is the real az the tests drive (Debian's 2.45, with python3-azure).
# chromium runs the portal's end-to-end tests (driven by playwright-core; no browser download).
# postgresql is the scale-out metadata engine; the tests start throwaway servers of their own with it.
# wrk and openssl are the benchmark's: manifest GET load, and the reference registry's TLS certificate.
# ceph-mon, ceph-osd and radosgw are the S3-compatible object store the S3 blob store's tests run against
# (scripts/start-s3.sh: a one-node cluster on loopback; ~250 MiB installed, ~20 s to install).
PACKAGES=(runc skopeo podman docker-registry busybox-static apache2-utils umoci docker.io iproute2 attr time slirp4netns libnss-myhostname azure-cli chromium postgresql wrk openssl ceph-mon ceph-osd radosgw uuid-runtime curl)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "berth: these OS packages are missing: ${missing[*]}; run this script as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "berth: installing OS packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# libnss-myhostname's install adds itself to /etc/nsswitch.conf; a machine where that line was edited by
# hand may lack it, so make sure (vault URIs are by name only where such names resolve).
if [ "$(id -u)" = 0 ] && [ -f /etc/nsswitch.conf ] && ! grep -qE '^hosts:.*\bmyhostname\b' /etc/nsswitch.conf; then
  sed -i -E 's/^(hosts:\s+files)/\1 myhostname/' /etc/nsswitch.conf
fi
# The Debian docker-registry package may start a registry on :5000 through its init script; Berth's
# tests start their own, so stop that one if it runs.
if command -v service >/dev/null 2>&1; then service docker-registry stop >/dev/null 2>&1 || true; fi

# npm ci starts from an empty node_modules every time; a second run (quickstart again) skips it while
# node_modules was installed from this very lockfile, and only builds.
LOCK_SUM=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.berth-lockfile.sha256 2>/dev/null)" = "$LOCK_SUM" ]; then
  echo "berth: npm dependencies are installed from this lockfile; building"
  npm run build --silent
else
  echo "berth: installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
  echo "$LOCK_SUM" > node_modules/.berth-lockfile.sha256
fi

# The newest published Azure SDK packages, beside the pinned ones (users install @latest): the SDK tests
# run against both. A failure here (no registry) is not fatal: those tests then skip and say why.
AZURE_SDKS=(@azure/identity @azure/keyvault-secrets @azure/container-registry @azure/arm-containerinstance
  @azure/arm-containerregistry @azure/arm-keyvault @azure/arm-msi @azure/arm-authorization @azure/arm-resources)
echo "berth: installing the newest Azure SDK packages into .sdk-latest"
mkdir -p .sdk-latest
[ -f .sdk-latest/package.json ] || echo '{"name":"berth-sdk-latest","private":true}' > .sdk-latest/package.json
if ! npm install --prefix .sdk-latest --no-audit --no-fund --no-save --loglevel=error "${AZURE_SDKS[@]/%/@latest}" >/dev/null; then
  echo "berth: could not install the newest Azure SDK packages; their tests will skip" >&2
fi
