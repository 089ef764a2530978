#!/usr/bin/env bash
# update-web-vendor.sh refetches the JavaScript players that web/player
# embeds (mpegts.js for HTTP-FLV and WebSocket-FLV, hls.js for LL-HLS) with
# `npm pack`, checks each tarball against the sha512 integrity pinned below
# and against the one the registry reports, and copies the browser builds
# and licenses into web/player/static/vendor/, rewriting VERSIONS there.
#
# To move to a new version: change the version and integrity pinned below
# (`npm view <pkg>@<version> dist.integrity`), run this script, commit.
#
#   scripts/update-web-vendor.sh          refetch and install
#   scripts/update-web-vendor.sh -check   refetch and compare with the
#                                         committed files; change nothing
set -euo pipefail

MPEGTS_VERSION=1.8.2
MPEGTS_INTEGRITY=sha512-cZYMa5muASH55wrS6JK5IGkUqnCA96c0f+WdnW91jIK9s/N6NzjmTQDJNYg9A5u/G2Q5nj2b3w1Zwzze/9guxA==
HLS_VERSION=1.7.4
HLS_INTEGRITY=sha512-3GlxGdPvT2YHvQYOt+yOzT/DEior/qJVNIylHA77kgeoBTdQQqi70GwefNEUmHQeNGyjC8U62+bruqW/Tpm+tg==

check=false
[[ "${1:-}" == "-check" ]] && check=true

root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/web/player/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# fetch PKG VERSION INTEGRITY: npm pack into $work/PKG, verify, unpack.
fetch() {
	local pkg=$1 ver=$2 want=$3 tgz got reg
	mkdir -p "$work/$pkg"
	tgz=$(cd "$work/$pkg" && npm pack --silent "$pkg@$ver")
	got="sha512-$(openssl dgst -sha512 -binary "$work/$pkg/$tgz" | base64 -w0)"
	if [[ "$got" != "$want" ]]; then
		echo "$pkg@$ver: tarball integrity $got, pinned $want" >&2
		exit 1
	fi
	reg=$(npm view "$pkg@$ver" dist.integrity)
	if [[ "$reg" != "$want" ]]; then
		echo "$pkg@$ver: registry integrity $reg, pinned $want" >&2
		exit 1
	fi
	tar -xzf "$work/$pkg/$tgz" -C "$work/$pkg"
	echo "$pkg@$ver: $got ok" >&2
}

fetch mpegts.js "$MPEGTS_VERSION" "$MPEGTS_INTEGRITY"
fetch hls.js "$HLS_VERSION" "$HLS_INTEGRITY"

out=$work/out
mkdir -p "$out"
cp "$work/mpegts.js/package/dist/mpegts.js" "$out/mpegts.js"
cp "$work/mpegts.js/package/dist/mpegts.js.LICENSE.txt" "$out/mpegts.js.LICENSE.txt"
cp "$work/mpegts.js/package/LICENSE" "$out/mpegts.LICENSE"
cp "$work/hls.js/package/dist/hls.min.js" "$out/hls.min.js"
cp "$work/hls.js/package/LICENSE" "$out/hls.LICENSE"
cat >"$out/VERSIONS" <<VERSIONS
# Third-party browser players embedded by web/player, fetched from the npm
# registry with \`npm pack\` by scripts/update-web-vendor.sh (do not edit by
# hand; change the pins in that script and run it). Files are unmodified.
#
# package    version  license     npm tarball integrity (dist.integrity)
mpegts.js    $MPEGTS_VERSION    Apache-2.0  $MPEGTS_INTEGRITY
hls.js       $HLS_VERSION    Apache-2.0  $HLS_INTEGRITY
#
# file                    from
# mpegts.js               mpegts.js dist/mpegts.js (minified UMD, global "mpegts")
# mpegts.js.LICENSE.txt   mpegts.js dist/mpegts.js.LICENSE.txt
# mpegts.LICENSE          mpegts.js LICENSE
# hls.min.js              hls.js dist/hls.min.js (full build with LL-HLS, global "Hls")
# hls.LICENSE             hls.js LICENSE
VERSIONS

if $check; then
	diff -r "$out" "$dest"
	echo "vendor files match the pinned packages" >&2
	exit 0
fi
mkdir -p "$dest"
cp "$out"/* "$dest"/
echo "updated $dest" >&2
