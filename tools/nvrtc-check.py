#!/usr/bin/env python3
# Compile-only check of the embedded CUDA kernels for sm_90 without a GPU: concatenates the sources in
# KernelCompiler's order and compiles them with NVRTC for each element type (float32, bf16, f16), printing
# the compiler log. Needs an NVRTC library on the loader path (e.g. Debian non-free's libnvrtc11.2, NVRTC
# 11.8, or CUDA 12/13's libnvrtc). Extra arguments are passed to NVRTC, e.g. --ptxas-options=-v for
# register counts.   Usage (repo root): python3 tools/nvrtc-check.py [--ptxas-options=-v]
import ctypes, re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
kernels = root / "src/Pagoda.Cuda/Kernels"
order = re.search(r'Sources = \[([^\]]*)\]', (root / "src/Pagoda.Cuda/KernelCompiler.cs").read_text()).group(1)
names = re.findall(r'"([^"]+)"', order)
source = "".join((kernels / n).read_text() + "\n" for n in names)
lib = None
for name in ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"]:
    try:
        lib = ctypes.CDLL(name)
        break
    except OSError:
        continue
if lib is None:
    sys.exit("no NVRTC library found (libnvrtc.so.13/.12/.11.2)")
ok = True
for defines in [[], ["ELEM_BF16"], ["ELEM_F16"]]:
    prog = ctypes.c_void_p()
    if lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"pagoda_kernels.cu", 0, None, None) != 0:
        sys.exit("nvrtcCreateProgram failed")
    opts = [b"--gpu-architecture=sm_90", b"--std=c++17"] + [("-D" + d).encode() for d in defines] + [a.encode() for a in sys.argv[1:]]
    rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    text = log.value.decode(errors="replace").strip()
    print(f"{' '.join(defines) or 'float32'}: {'ok' if rc == 0 else f'FAILED ({rc})'}" + (f"\n{text}" if text else ""))
    ok &= rc == 0
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
sys.exit(0 if ok else 1)
