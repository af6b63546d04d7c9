#!/usr/bin/env bash
# Publishes self-contained, trimmed linux-x64 builds of the CLI and the GPU check tool for a machine
# with an NVIDIA driver and the CUDA 12/13 runtime libraries (libnvrtc, libcublas) but no .NET.
#   tools/publish-cuda.sh [OUT_DIR]      (default: artifacts/cuda, git-ignored)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/artifacts/cuda}"
common=(-c Release -r linux-x64 --self-contained -p:PublishTrimmed=true -p:TrimMode=partial
        -p:JsonSerializerIsReflectionEnabledByDefault=true -p:DebugType=none -p:TreatWarningsAsErrors=false
        -p:SuppressTrimAnalysisWarnings=true -p:EnableCompressionInSingleFile=true -p:PublishSingleFile=true -nologo)
dotnet publish "$root/src/Pagoda.Cli/Pagoda.Cli.csproj" "${common[@]}" -o "$out/pagoda" >/dev/null
dotnet publish "$root/tools/Pagoda.CudaCheck/Pagoda.CudaCheck.csproj" "${common[@]}" -o "$out/check" >/dev/null
du -sh "$out"/*
