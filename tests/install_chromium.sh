#!/bin/sh
# Install Debian's headless-capable `chromium` into a project folder, without root: `apt-get download`
# the browser and the libraries a stock Debian 12 image lacks, unpack them with `dpkg -x`, and write a
# wrapper that points the loader at them. Used by `make test` for tests/test_report_browser.py.
# Never fails the build: if it cannot install, it says why, and the browser test skips with that reason.
#
#   sh tests/install_chromium.sh DEST      (DEST/chromium is the wrapper the test runs)
set -u
DEST=${1:?usage: install_chromium.sh DEST}
if [ -x "$DEST/chromium" ] && "$DEST/chromium" --version >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    echo "install_chromium: no apt-get/dpkg here (not Debian?); install chromium yourself or the browser test skips" >&2
    exit 0
fi
# The browser, then the shared libraries `ldd` finds missing on a minimal Debian 12 (with theirs).
PACKAGES="chromium chromium-common libopenh264-7 libdouble-conversion3 libharfbuzz-subset0 libpulse0
libflac12 libopus0 libxnvctrl0 libminizip1 libopenjp2-7 libasyncns0 libogg0 libsndfile1 libmp3lame0
libmpg123-0 libvorbis0a libvorbisenc2"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "install_chromium: downloading chromium and its libraries into $DEST (about 110 MB)" >&2
if ! (cd "$WORK" && apt-get download $PACKAGES >/dev/null 2>"$WORK/apt.log"); then
    echo "install_chromium: apt-get download failed ($(tail -n 1 "$WORK/apt.log")); the browser test will skip" >&2
    exit 0
fi
rm -rf "$DEST" && mkdir -p "$DEST/root"
for deb in "$WORK"/*.deb; do dpkg -x "$deb" "$DEST/root"; done
LIBS="$DEST/root/usr/lib/x86_64-linux-gnu:$DEST/root/usr/lib/x86_64-linux-gnu/pulseaudio"
ROOT=$(cd "$DEST/root" && pwd)
cat >"$DEST/chromium" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu/pulseaudio\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$ROOT/usr/lib/chromium/chromium" "\$@"
WRAP
chmod +x "$DEST/chromium"
missing=$(LD_LIBRARY_PATH="$LIBS" ldd "$DEST/root/usr/lib/chromium/chromium" | grep "not found")
if [ -n "$missing" ]; then
    echo "install_chromium: chromium still lacks libraries:" >&2
    echo "$missing" >&2
    exit 0
fi
echo "install_chromium: $("$DEST/chromium" --version 2>/dev/null) in $DEST" >&2
