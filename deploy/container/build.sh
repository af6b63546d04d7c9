#!/usr/bin/env bash
# Builds Pagoda's container image from the self-contained publish (no .NET SDK or runtime in the image).
#   deploy/container/build.sh                 CPU image pagoda:cpu (Containerfile, FROM scratch)
#   deploy/container/build.sh --cuda          CUDA image pagoda:cuda (Containerfile.cuda, on NVIDIA's CUDA runtime)
# Options: --tag NAME, --tool podman|docker (default: podman if present, else docker), --no-publish (reuse the last
# publish), --cuda-base IMAGE (another CUDA runtime image, or a local mirror of one).
# Steps: dotnet publish (linux-x64, self-contained, single file, trimmed: the flags of tools/publish-cuda.sh, plus
# invariant globalization so no ICU is needed), then a root file system under artifacts/image/rootfs: the program and
# its model under /opt/pagoda, `pagoda` and `vllm` links in /usr/local/bin, the shared libraries it loads (copied from
# this machine with their dependencies), a passwd entry for the non-root user 65532, CA certificates, /data and /tmp.
# The image is built from that folder; its Containerfiles have no RUN step, so no container runtime runs at build time.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/deploy/container"
out="$root/artifacts/image"
variant=cpu tag="" tool="" publish=1 cuda_base=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) variant=cuda ;;
    --tag) tag="$2"; shift ;;
    --tool) tool="$2"; shift ;;
    --no-publish) publish=0 ;;
    --cuda-base) cuda_base="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
tag="${tag:-pagoda:$variant}"
if [ -z "$tool" ]; then
  if command -v podman >/dev/null; then tool=podman; elif command -v docker >/dev/null; then tool=docker
  else echo "build.sh: neither podman nor docker found (apt-get install podman runc)" >&2; exit 1; fi
fi

if [ "$publish" = 1 ] || [ ! -x "$out/publish/Pagoda.Cli" ]; then
  echo "build.sh: publishing the self-contained binary..." >&2
  rm -rf "$out/publish"
  dotnet publish "$root/src/Pagoda.Cli/Pagoda.Cli.csproj" -c Release -r linux-x64 --self-contained \
    -p:PublishTrimmed=true -p:TrimMode=partial -p:JsonSerializerIsReflectionEnabledByDefault=true -p:DebugType=none \
    -p:TreatWarningsAsErrors=false -p:SuppressTrimAnalysisWarnings=true -p:EnableCompressionInSingleFile=true \
    -p:PublishSingleFile=true -p:InvariantGlobalization=true -nologo -o "$out/publish" >"$out.publish.log" 2>&1 \
    || { tail -20 "$out.publish.log" >&2; exit 1; }
fi

rootfs="$out/rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs"/{opt/pagoda,usr/local/bin,lib/x86_64-linux-gnu,lib64,etc/ssl/certs,data/huggingface,data/pagoda,tmp}
cp -a "$out/publish/." "$rootfs/opt/pagoda/"
mv "$rootfs/opt/pagoda/Pagoda.Cli" "$rootfs/opt/pagoda/pagoda"
ln -s /opt/pagoda/pagoda "$rootfs/usr/local/bin/pagoda"
ln -s /opt/pagoda/pagoda "$rootfs/usr/local/bin/vllm"

# The libraries the program links, and those .NET opens at run time (OpenSSL for HTTPS), with their dependencies.
libs() { ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'; }
wanted=("$rootfs/opt/pagoda/pagoda")
for name in libssl.so.3 libcrypto.so.3; do
  path="$(ldconfig -p | awk -v n="$name" '$1 == n && /x86-64/ { print $NF; exit }')"
  [ -n "$path" ] || { echo "build.sh: $name not found on this machine (apt-get install libssl3)" >&2; exit 1; }
  wanted+=("$path")
done
for so in "$rootfs"/opt/pagoda/*.so; do [ -e "$so" ] && wanted+=("$so"); done
for f in "${wanted[@]}"; do
  case "$f" in "$rootfs"/*) ;; *) cp -L "$f" "$rootfs/lib/x86_64-linux-gnu/" ;; esac
  for dep in $(libs "$f"); do
    case "$dep" in
      */ld-linux-x86-64.so.2) cp -L "$dep" "$rootfs/lib64/" ;;
      *) cp -L "$dep" "$rootfs/lib/x86_64-linux-gnu/" ;;
    esac
  done
done

printf 'root:x:0:0:root:/root:/sbin/nologin\npagoda:x:65532:65532:pagoda:/data:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\npagoda:x:65532:\n' >"$rootfs/etc/group"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
else
  echo "build.sh: warning: no /etc/ssl/certs/ca-certificates.crt here; Hub downloads over HTTPS will fail in the image" >&2
fi
chmod 755 "$rootfs/data" "$rootfs/data"/*
chmod 1777 "$rootfs/tmp"

args=(build -f "$here/Containerfile" -t "$tag")
if [ "$variant" = cuda ]; then
  args=(build -f "$here/Containerfile.cuda" -t "$tag")
  [ -z "$cuda_base" ] || args+=(--build-arg "BASE=$cuda_base")
fi
"$tool" "${args[@]}" "$rootfs" >&2
size="$("$tool" image inspect --format '{{.Size}}' "$tag")"
echo "build.sh: built $tag ($((size / 1024 / 1024)) MiB)" >&2
echo "$tag"
