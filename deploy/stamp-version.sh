#!/usr/bin/env bash
# Prints the stamp of the tree (g<commit>[.dirty]) from git, or writes it into BuildStamp.swift:
#   deploy/stamp-version.sh          print the stamp ("" outside a git checkout)
#   deploy/stamp-version.sh write    stamp Sources/CustosVersion/BuildStamp.swift
#   deploy/stamp-version.sh version  print the full version (release+stamp)
set -euo pipefail
cd "$(dirname "$0")/.."
file=Sources/CustosVersion/BuildStamp.swift
release=$(sed -n 's/.*static let release = "\(.*\)"/\1/p' Sources/CustosVersion/CustosVersion.swift)
stamp=""
if git rev-parse --git-dir >/dev/null 2>&1; then
  stamp="g$(git rev-parse --short=12 HEAD)"
  # The stamp file itself is rewritten by `write`; any other change makes the build dirty.
  if [ -n "$(git status --porcelain --untracked-files=no -- . ":(exclude)$file")" ]; then stamp="$stamp.dirty"; fi
else
  # A source tarball: keep the stamp it was made with.
  stamp=$(sed -n 's/.*static let buildStamp = "\(.*\)"/\1/p' "$file")
fi
case "${1:-}" in
  "") echo "$stamp" ;;
  version) if [ -n "$stamp" ]; then echo "$release+$stamp"; else echo "$release"; fi ;;
  write)
    cat > "$file" <<SWIFT
// Written by deploy/stamp-version.sh during \`make dist\`, then restored: a build from a checkout
// has no stamp; the source tarball carries the stamped copy.
extension CustosVersion {
    static let buildStamp = "$stamp"
}
SWIFT
    ;;
  *) echo "usage: $0 [write|version]" >&2; exit 2 ;;
esac
