#!/bin/bash
# Builds the root file system of pgdeck's test image (Debian 12 with
# PostgreSQL 15 and PgBouncer) and writes it as a tarball that
# `docker import` reads: image.sh OUT.tar. Needs root and debootstrap.
# The tarball is cached under a hash of this script: change the script to
# rebuild it.
set -euo pipefail
out=$1
root=$(mktemp -d /tmp/pgdeck-rootfs-XXXXXX)
# debootstrap mounts proc and sys inside while it installs: never delete
# through them, also when it was interrupted.
cleanup() {
  grep -o " $root/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done || true
  rm -rf --one-file-system "$root" "$root.log"
}
trap cleanup EXIT
debootstrap --variant=minbase --include=postgresql-15,pgbouncer,postgresql-client-15 \
  bookworm "$root" http://deb.debian.org/debian >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; exit 1; }
# The package made a cluster and started nothing: the runtime makes its own.
rm -rf "$root"/var/lib/postgresql/15/main "$root"/etc/postgresql/15/main
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* \
  "$root"/usr/share/info/* "$root"/usr/share/i18n "$root"/var/cache/apt/*.bin
# JIT is optional: without llvmjit.so PostgreSQL runs with JIT unavailable,
# and LLVM (with z3) is half of the image.
rm -rf "$root"/usr/lib/postgresql/15/lib/bitcode "$root"/usr/lib/postgresql/15/lib/llvmjit* \
  "$root"/usr/lib/x86_64-linux-gnu/libLLVM-* "$root"/usr/lib/x86_64-linux-gnu/libz3.so*
mkdir -p "$root"/var/run/postgresql && chown --reference="$root"/var/lib/postgresql "$root"/var/run/postgresql 2>/dev/null || true
# A build that outlived its test binary may race another: each writes its
# own file, and the rename is atomic.
tar --numeric-owner -C "$root" -cf "$out.$$.tmp" .
mv "$out.$$.tmp" "$out"
