#!/usr/bin/env bash
# Replace the vendored three.js (webapp_static/vendor/three) with the npm package at VERSION, unchanged.
#   bash scripts/vendor_three.sh 0.187.0
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:?usage: bash scripts/vendor_three.sh VERSION (e.g. 0.187.0)}
DEST=webapp_static/vendor/three
FILES=(build/three.module.js build/three.core.js examples/jsm/loaders/GLTFLoader.js
       examples/jsm/controls/OrbitControls.js examples/jsm/utils/BufferGeometryUtils.js
       examples/jsm/utils/SkeletonUtils.js LICENSE)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "three@$VERSION" >/dev/null && tar xzf "three-$VERSION.tgz")
for f in "${FILES[@]}"; do
  mkdir -p "$DEST/$(dirname "$f")"
  cp "$work/package/$f" "$DEST/$f"
done
echo "three@$VERSION copied to $DEST; sha256 of the tarball: $(sha256sum "$work/three-$VERSION.tgz" | cut -c1-64)"
echo "now update the version and checksum in $DEST/README.md and README.md"
