#!/bin/sh
# Install the funcx-endpoint binary of a GitHub release for this machine, without root.
#
#   curl -fsSL https://github.com/OWNER/REPO/releases/latest/download/install.sh | sh
#   sh install.sh [--version V] [--prefix DIR] [--repo OWNER/NAME] [--base-url URL]
#
# Detects the OS and architecture (Linux x86_64/aarch64, macOS x86_64/arm64), downloads
# funcx-endpoint-<target> and its .sha256 from the release (the latest unless --version),
# verifies the SHA-256 checksum (a mismatch installs nothing), and installs the binary as
# DIR/bin/funcx-endpoint (DIR defaults to ~/.local). The same settings can be given as
# FUNCX_ENDPOINT_VERSION, FUNCX_ENDPOINT_PREFIX, FUNCX_ENDPOINT_REPO, FUNCX_ENDPOINT_BASE_URL.
# --base-url replaces https://github.com/OWNER/NAME/releases (a mirror, or a test server).
set -eu

# The release workflow writes the repository it publishes from here.
REPO_DEFAULT=""

version="${FUNCX_ENDPOINT_VERSION:-latest}"
prefix="${FUNCX_ENDPOINT_PREFIX:-}"
repo="${FUNCX_ENDPOINT_REPO:-$REPO_DEFAULT}"
base_url="${FUNCX_ENDPOINT_BASE_URL:-}"

die() {
  echo "install.sh: $*" >&2
  exit 1
}

usage="usage: install.sh [--version V] [--prefix DIR] [--repo OWNER/NAME] [--base-url URL]"
while [ $# -gt 0 ]; do
  case "$1" in
  --version | --prefix | --repo | --base-url)
    [ $# -ge 2 ] || die "$1 needs a value; $usage"
    case "$1" in
    --version) version="$2" ;;
    --prefix) prefix="$2" ;;
    --repo) repo="$2" ;;
    --base-url) base_url="$2" ;;
    esac
    shift 2
    ;;
  --version=*) version="${1#*=}"; shift ;;
  --prefix=*) prefix="${1#*=}"; shift ;;
  --repo=*) repo="${1#*=}"; shift ;;
  --base-url=*) base_url="${1#*=}"; shift ;;
  -h | --help) echo "$usage"; exit 0 ;;
  *) die "unknown option '$1'; $usage" ;;
  esac
done

case "$version" in
latest) ;;
v[0-9]* | [0-9]*)
  case "$version" in
  *[!0-9A-Za-z.+_-]*) die "--version: '$version' is not a release version (like 1.2.0 or v1.2.0)" ;;
  esac
  version="v${version#v}"
  ;;
*) die "--version: '$version' is not a release version (like 1.2.0 or v1.2.0) or 'latest'" ;;
esac

if [ -z "$base_url" ]; then
  case "$repo" in
  "") die "no repository: pass --repo OWNER/NAME (where funcx-endpoint is released) or --base-url URL" ;;
  */*) base_url="https://github.com/$repo/releases" ;;
  *) die "--repo: '$repo' is not OWNER/NAME" ;;
  esac
fi
base_url="${base_url%/}"

[ -n "$prefix" ] || {
  [ -n "${HOME:-}" ] || die "HOME is not set: pass --prefix DIR"
  prefix="$HOME/.local"
}
bindir="${prefix%/}/bin"

os="$(uname -s)"
arch="$(uname -m)"
case "$os" in
Linux) os_part="unknown-linux-gnu" ;;
Darwin)
  os_part="apple-darwin"
  # an x86_64 shell under Rosetta on Apple silicon: the native binary is the right one
  if [ "$arch" = x86_64 ] && [ "$(sysctl -n hw.optional.arm64 2>/dev/null || true)" = 1 ]; then
    arch=arm64
  fi
  ;;
*) die "unsupported OS '$os': releases exist for Linux and macOS (Darwin)" ;;
esac
case "$arch" in
x86_64 | amd64) arch_part="x86_64" ;;
aarch64 | arm64) arch_part="aarch64" ;;
*) die "unsupported architecture '$arch' on $os: releases exist for x86_64 and aarch64/arm64" ;;
esac
asset="funcx-endpoint-${arch_part}-${os_part}"

if [ "$version" = latest ]; then
  url="$base_url/latest/download/$asset"
else
  url="$base_url/download/$version/$asset"
fi

if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsSL --retry 3 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q -O "$2" "$1"; }
else
  die "neither curl nor wget is installed"
fi
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d ' ' -f 1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
else
  die "neither sha256sum nor shasum is installed: cannot verify the download"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/funcx-endpoint-install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

echo "Downloading $asset ($version) from $base_url" >&2
fetch "$url" "$tmp/$asset" || die "cannot download $url (is $version released for $arch_part-$os_part?)"
fetch "$url.sha256" "$tmp/$asset.sha256" || die "cannot download the checksum $url.sha256"

# The .sha256 file is `<hex>  funcx-endpoint-<target>` (sha256sum format).
want="$(cut -d ' ' -f 1 <"$tmp/$asset.sha256" | head -n 1 | tr 'A-F' 'a-f')"
named="$(head -n 1 <"$tmp/$asset.sha256" | sed 's/^[0-9a-fA-F]*[ *]*//')"
case "$want" in
*[!0-9a-f]* | "") die "$url.sha256 is not a SHA-256 checksum file" ;;
esac
[ "${#want}" -eq 64 ] || die "$url.sha256 is not a SHA-256 checksum file"
[ "$named" = "$asset" ] || die "$url.sha256 is the checksum of '$named', not of $asset"
got="$(sha256 "$tmp/$asset")"
[ "$got" = "$want" ] ||
  die "checksum mismatch for $asset: expected $want, got $got; nothing was installed"

chmod 0755 "$tmp/$asset"
said="$("$tmp/$asset" --version 2>/dev/null)" ||
  die "the downloaded $asset does not run on this machine ($os $arch); nothing was installed"

mkdir -p "$bindir" || die "cannot create $bindir"
cp "$tmp/$asset" "$bindir/.funcx-endpoint.new.$$" || die "cannot write to $bindir"
mv -f "$bindir/.funcx-endpoint.new.$$" "$bindir/funcx-endpoint" ||
  { rm -f "$bindir/.funcx-endpoint.new.$$"; die "cannot install $bindir/funcx-endpoint"; }

release="$(printf '%s\n' "$said" | sed -n 's/^release: //p')"
echo "Installed $bindir/funcx-endpoint (release ${release:-unknown}, checksum verified)"
case ":${PATH:-}:" in
*":$bindir:"*) cmd="funcx-endpoint" ;;
*)
  echo "$bindir is not on your PATH; add it with:"
  echo "  export PATH=\"$bindir:\$PATH\""
  cmd="$bindir/funcx-endpoint"
  ;;
esac
echo "Next: $cmd login"
