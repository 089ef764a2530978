#!/usr/bin/env bash
# Installs the tools `make test` needs: golangci-lint at the pinned version
# (go install into GOBIN, for `make lint`), then, with apt-get, the external
# tools the end-to-end tests drive: ffmpeg (with ffprobe), rtmpdump, nginx
# with its RTMP and stream modules, python3-librtmp, tshark, GStreamer's
# gst-launch-1.0 with rtmp2src and rtmp2sink, Debian's chromium (headless,
# for the browser playback tests) with a font for its screenshots,
# nats-server and haproxy (a load balancer in front of clustered hubs), and
# node (the JavaScript client library's tests, web/sdk).
# Only what is missing is
# installed; when everything is present this does nothing and returns at
# once. With the argument golangci-lint, only the linter is installed (what
# `make lint` calls).
#
# golangci-lint is installed with `go install`, not as a `tool` directive in
# go.mod: `go get -tool` adds about 200 requirements to go.mod (34 -> 242
# lines, go.sum 99 -> 593) and raises golang.org/x/{sys,net,crypto,text} and
# protobuf for every build of the module, `go run ./cmd/rtmphub` included.
set -euo pipefail

GO="${GO:-go}"
GOLANGCI_LINT_VERSION=v2.15.0

have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# install_golangci_lint puts golangci-lint $GOLANGCI_LINT_VERSION in GOBIN
# (GOPATH/bin when unset) unless it is there already, built by the Go
# toolchain in use (one built by an older Go cannot load newer packages).
install_golangci_lint() {
	local bin
	bin="$("$GO" env GOBIN)"
	if [ -z "$bin" ]; then
		bin="$("$GO" env GOPATH)"
		bin="${bin%%:*}/bin"
	fi
	bin="$bin/golangci-lint"
	local want_go have
	want_go="$("$GO" env GOVERSION)"
	if [ -x "$bin" ] && have="$("$bin" version 2>/dev/null)" &&
		[[ "$have" == *"version ${GOLANGCI_LINT_VERSION#v} "* && "$have" == *"built with $want_go "* ]]; then
		echo "golangci-lint: $GOLANGCI_LINT_VERSION present"
		return
	fi
	echo "golangci-lint: installing $GOLANGCI_LINT_VERSION into $(dirname "$bin")"
	# Outside the module: its go.mod and GOFLAGS=-mod=... must not apply.
	(cd / && GOFLAGS= "$GO" install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION")
}

install_golangci_lint
if [ "${1:-}" = golangci-lint ]; then
	exit 0
fi

missing=()
{ have_cmd ffmpeg && have_cmd ffprobe; } || missing+=(ffmpeg)
have_cmd rtmpdump || missing+=(rtmpdump)
have_cmd nginx || missing+=(nginx)
have_pkg libnginx-mod-rtmp || missing+=(libnginx-mod-rtmp)
have_pkg libnginx-mod-stream || missing+=(libnginx-mod-stream)
have_pkg python3-librtmp || missing+=(python3-librtmp)
have_cmd tshark || missing+=(tshark)
# GStreamer: rtmp2src/rtmp2sink, openh264enc and voaacenc are in -bad (on
# Debian 12 it links libopenh264 and libvo-aacenc, so neither -ugly's x264enc
# nor -libav is needed); flvmux/flvdemux in -good; videotestsrc,
# audiotestsrc and the converters in -base.
have_cmd gst-launch-1.0 || missing+=(gstreamer1.0-tools)
for p in gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad; do
	have_pkg "$p" || missing+=("$p")
done
# Chromium, driven headless by the browser tests (chromedp): Debian's build
# plays H.264 and AAC through MSE, not HEVC (TestBrowserCodecSupport logs
# what it plays). Its fonts are only a Recommends (fonts-liberation), which
# --no-install-recommends below skips, so a font for the text of the pages
# and screenshots comes on its own.
have_cmd chromium || missing+=(chromium)
have_pkg fonts-dejavu-core || missing+=(fonts-dejavu-core)
# nats-server lands in /usr/sbin, which a non-root PATH may lack.
{ have_cmd nats-server || have_pkg nats-server; } || missing+=(nats-server)
# haproxy too (its Debian config listens nowhere; the test runs its own).
{ have_cmd haproxy || have_pkg haproxy; } || missing+=(haproxy)
# node runs web/sdk's tests (node --test). Its hub test
# (e2e TestSDKNodeAgainstHub) needs node >= 20 for a WebSocket client;
# Debian 12's nodejs is 18, so there the test says so and fails in CI:
# install a newer nodejs (Debian 13, or NodeSource) instead.
have_cmd node || missing+=(nodejs)

if ((${#missing[@]} == 0)); then
	echo "test tools: all present"
	exit 0
fi
echo "test tools: installing ${missing[*]}"

if ! have_cmd apt-get; then
	echo "apt-get not found: install ${missing[*]} with your package manager" >&2
	exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! have_cmd sudo; then
		echo "not root and no sudo: cannot install ${missing[*]}" >&2
		exit 1
	fi
	sudo=(sudo)
fi

for p in "${missing[@]}"; do
	if [ "$p" = tshark ]; then
		# Answer wireshark-common's "allow non-root capture?" question up front.
		echo 'wireshark-common wireshark-common/install-setuid boolean false' |
			"${sudo[@]}" debconf-set-selections
	fi
done

"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
