#!/usr/bin/env bash
# Lays out an install tree for a custos binary and packs it as a tarball and a Debian package:
#   deploy/package.sh BINARY VERSION OUTDIR [xz|gzip]
# The tree: /usr/bin/custos, the systemd units, /etc/custos (default configuration, empty
# policies folder), /usr/lib/sysusers.d/custos.conf, the docs and the example policies.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
binary="$1" version="$2" out="$3" compress="${4:-xz}"
arch=$(dpkg --print-architecture)
mkdir -p "$out"
stage=$(mktemp -d "$out/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/custos_${version}_${arch}"
install -D -m 0755 "$binary" "$root/usr/bin/custos"
for u in custos.socket custos.service custos-archive.service custos-archive.timer; do
  install -D -m 0644 "$repo/deploy/systemd/$u" "$root/lib/systemd/system/$u"
done
install -D -m 0644 "$repo/deploy/systemd/custos.sysusers" "$root/usr/lib/sysusers.d/custos.conf"
install -D -m 0644 "$repo/deploy/systemd/custos.json" "$root/etc/custos/custos.json"
install -d -m 0750 "$root/etc/custos/policies"
doc="$root/usr/share/doc/custos"
install -D -m 0644 "$repo/README.md" "$doc/README.md"
for f in "$repo"/docs/*.md; do install -m 0644 "$f" "$doc/"; done
mkdir -p "$doc/examples"
cp -r "$repo/policies" "$doc/examples/policies"
chmod -R u=rwX,go=rX "$doc/examples"
# A binary tarball of the same tree, for machines without dpkg.
tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "$out/custos-${version}-linux-${arch}.tar.gz" "custos_${version}_${arch}"
mkdir -p "$root/DEBIAN"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" "$repo/deploy/debian/control.in" > "$root/DEBIAN/control"
echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)" >> "$root/DEBIAN/control"
install -m 0644 "$repo/deploy/debian/conffiles" "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$repo/deploy/debian/$s" "$root/DEBIAN/$s"; done
dpkg-deb --root-owner-group -Z"$compress" --build "$root" "$out/custos_${version}_${arch}.deb" >/dev/null
echo "$out/custos_${version}_${arch}.deb"
echo "$out/custos-${version}-linux-${arch}.tar.gz"
