#!/usr/bin/env bash
# Device bundle: crema built here with CUDA, packed with the shared libraries it needs, so that
# it runs on a GPU machine that has the CUDA runtime (from PyTorch's wheels) but none of
# crema's Debian -dev packages (protobuf, glog, gflags, OpenBLAS, OpenCV, LMDB, HDF5, GoogleTest).
#
#   bash tools/device_bundle.sh        # build + pack -> .device/bundle.tar.xz (git-ignored)
#   bash tools/gpu_check.sh            # on the device: unpacks it and runs the GPU checks
#
# 1. Builds crema (Release, CUDA for sm_$CUDA_ARCH, tests ON, benchmarks OFF) into
#    $BUILD_DIR (default build-device/) with tools/build.sh; NO_BUILD=1 packs it as it is.
# 2. Stages bin/crema, bin/crema_tests, lib/libcrema.so (all stripped) and every shared
#    library they need, found by walking DT_NEEDED (readelf -d) from the three, resolved by
#    ldd, EXCEPT the C runtime (libc, libm, libpthread, libdl, librt, ld-linux, libgcc_s,
#    libstdc++: the device has newer ones) and the CUDA libraries (libcudart, libcublas,
#    libcublasLt, libcurand, libcudnn*, libnccl: the device takes them from PyTorch's
#    nvidia-* wheels). Libraries named in $STUB_LIBS (default libgdal.so.32) are replaced
#    by stubs (below), so what only they need stays out.
# 3. Writes env.sh (source it: puts bin/ on PATH, lib/ + the device python's
#    site-packages/nvidia/*/lib (+ nvidia/*/*/lib) + /usr/local/cuda/lib64 on
#    LD_LIBRARY_PATH) and BUILD_INFO (git revision, the source and binary paths compiled
#    into crema_tests, which tools/gpu_check.sh recreates on the device).
# 4. Packs it all into ONE file, .device/bundle.tar.xz (xz -9), and checks it: unpacked into
#    a temporary folder, every library the binaries load must come from the bundle or be a
#    C-runtime / CUDA one, and `crema --help` must run with a clean environment.
#
# Why stubs: Debian's libopencv_imgcodecs links GDAL (for cv::IMREAD_LOAD_GDAL, which crema
# never uses), and libgdal.so.32 pulls in ~60 more libraries (poppler, spatialite, proj, geos,
# xerces, netcdf, HDF4, ICU data, x265, aom, ...: ~115 MB). imgcodecs is linked with BIND_NOW,
# so each symbol it imports from GDAL must exist at load time: the stub defines exactly those
# (14 functions) returning 0/NULL. OpenCV's GDAL decoder calls GDALAllRegister() when the
# codec registry starts (a no-op now) and GDALOpen() only for IMREAD_LOAD_GDAL (NULL: "cannot
# read"); every other codec is the real one.
#
# Knobs (environment): BUILD_DIR (build-device), CUDA_ARCH (90), CREMA_JOBS (build
# parallelism; 1 on a busy 2-core machine), NO_BUILD=1, STUB_LIBS ("libgdal.so.32"; empty:
# bundle the real ones), XZ_OPT (-9 -T1), MAX_MIB (55: fail above it), NO_CHECK=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD_DIR:-build-device}
arch=${CUDA_ARCH:-90}
stub_libs=${STUB_LIBS-libgdal.so.32}
max_mib=${MAX_MIB:-55}
out_dir=$root/.device
work=$(mktemp -d /tmp/crema-device-bundle.XXXXXX)
trap 'rm -rf "$work"' EXIT
log() { echo "[device_bundle] $*" >&2; }

# ---- 1. build -----------------------------------------------------------------------------
if [[ "${NO_BUILD:-0}" != 1 ]]; then
  log "building crema into $build (Release, CUDA sm_$arch, tests on, benchmarks off)"
  if ! CREMA_BUILD_DIR="$build" CREMA_USE_CUDA=ON bash tools/build.sh \
      -DCREMA_CUDA_ARCHITECTURES="$arch" -DCREMA_BUILD_TESTS=ON -DCREMA_BUILD_BENCH=OFF \
      >"$work/build.log" 2>&1; then
    grep -E 'error|Error' "$work/build.log" | head -30 >&2 || tail -30 "$work/build.log" >&2
    log "build failed (full log: rerun tools/build.sh by hand)"
    exit 1
  fi
fi
for f in "$build/crema" "$build/libcrema.so" "$build/tests/crema_tests"; do
  [[ -f $f ]] || { log "missing $f (a build with tests on?)"; exit 1; }
done
if ! readelf -d "$build/libcrema.so" | grep -q 'libcudart'; then
  log "$build/libcrema.so does not link libcudart: not a CUDA build (is /usr/local/cuda there?)"
  exit 1
fi

# ---- 2. stage -----------------------------------------------------------------------------
stage=$work/stage
mkdir -p "$stage/bin" "$stage/libexec" "$stage/lib"
cp "$build/crema" "$stage/libexec/crema"
cp "$build/tests/crema_tests" "$stage/libexec/crema_tests"
cp "$build/libcrema.so" "$stage/lib/libcrema.so"
strip --strip-unneeded "$stage/libexec/crema" "$stage/libexec/crema_tests" "$stage/lib/libcrema.so"
# bin/crema and bin/crema_tests are wrappers: they source env.sh and exec libexec/NAME, so
# the bundle's libraries are seen by crema alone, never by other programs (python, torch)
# that a script running crema also runs.
for name in crema crema_tests; do
  cat >"$stage/bin/$name" <<'WRAPPER'
#!/usr/bin/env bash
# crema device bundle: runs libexec/<this name> with the bundle's libraries (env.sh).
_crema_self=$(readlink -f "${BASH_SOURCE[0]}")
source "${_crema_self%/bin/*}/env.sh"
exec "$CREMA_BUNDLE/libexec/${_crema_self##*/}" "$@"
WRAPPER
  chmod 755 "$stage/bin/$name"
done

# The dependency walk, the stubs and the copies, in Python (the standard library only).
STAGE=$stage BUILD=$build STUBS="$stub_libs" WORK=$work python3 - <<'EOF'
import os, re, shutil, subprocess, sys

stage, build, work = os.environ["STAGE"], os.environ["BUILD"], os.environ["WORK"]
stubs = set(os.environ["STUBS"].split())
# Not bundled: the C runtime (the device's own, newer) and CUDA (PyTorch's wheels there).
EXCLUDE = re.compile(r"^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread\.so|libdl\.so|"
                     r"librt\.so|libgcc_s\.so|libstdc\+\+\.so|libcudart\.so|libcublas\.so|"
                     r"libcublasLt\.so|libcurand\.so|libcudnn[a-z_]*\.so|libnccl\.so|"
                     r"libcuda\.so|libcrema\.so)")
roots = [f"{build}/crema", f"{build}/tests/crema_tests", f"{build}/libcrema.so"]

def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)

def resolve(paths):
    """soname -> path, as the loader finds them here (ldd of the roots covers every soname)."""
    found = {}
    for p in paths:
        out = subprocess.run(["ldd", p], capture_output=True, text=True).stdout
        for name, target in re.findall(r"^\s*(\S+) => (\S+)", out, re.M):
            if target != "not":
                found.setdefault(name, target)
            elif not EXCLUDE.match(name):
                sys.exit(f"device_bundle: {p} needs {name}, which is not found here")
    return found

where = resolve(roots)
bundle, order, todo = set(), [], list(roots)
while todo:
    for name in needed(todo.pop()):
        if EXCLUDE.match(name) or name in bundle:
            continue
        if name not in where:
            sys.exit(f"device_bundle: cannot locate {name}")
        bundle.add(name)
        order.append(name)
        if name not in stubs:
            todo.append(where[name])

def dynsyms(path, defined):
    out = subprocess.run(["readelf", "--dyn-syms", "-W", path], capture_output=True, text=True,
                         check=True).stdout
    syms = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) < 8 or not f[0].rstrip(":").isdigit():
            continue
        size, typ, bind, ndx, name = f[2], f[3], f[4], f[6], f[7]
        if bind == "LOCAL" or (ndx != "UND") != defined:
            continue
        syms[name] = (typ, int(size, 0))
    return syms

total = 0
for name in order:
    if name in stubs:
        continue
    dst = os.path.join(stage, "lib", name)
    shutil.copy2(os.path.realpath(where[name]), dst)
    os.chmod(dst, 0o755)
    total += os.path.getsize(dst)

for name in sorted(stubs & bundle):
    real = dynsyms(where[name], defined=True)
    # Every symbol that a bundled object imports and the real library defines.
    users = [os.path.join(stage, "lib", n) for n in order if n not in stubs] + \
            [os.path.join(stage, "libexec", b) for b in ("crema", "crema_tests")] + \
            [os.path.join(stage, "lib", "libcrema.so")]
    wanted = {}
    for u in users:
        for sym, (typ, size) in dynsyms(u, defined=False).items():
            base = sym.split("@")[0]
            if base in real:
                if "@" in sym:
                    sys.exit(f"device_bundle: {u} imports the versioned {sym} from {name}; "
                             "the stub generator does not do symbol versions")
                wanted[base] = real[base]
    lines = [f"/* Stub of {name} for the crema device bundle (tools/device_bundle.sh): the "
             f"symbols that the bundled libraries import from it, doing nothing. */"]
    for i, (sym, (typ, size)) in enumerate(sorted(wanted.items())):
        if typ == "OBJECT":
            lines.append(f'char crema_stub_o{i}[{max(size, 1)}] __asm__("{sym}") = {{0}};')
        else:
            lines.append(f'void *crema_stub_f{i}(void) __asm__("{sym}");')
            lines.append(f"void *crema_stub_f{i}(void) {{ return 0; }}")
    src = os.path.join(work, f"stub_{name}.c")
    open(src, "w").write("\n".join(lines) + "\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-s", f"-Wl,-soname,{name}", "-o",
                    os.path.join(stage, "lib", name), src], check=True)
    print(f"[device_bundle] stub {name}: {len(wanted)} symbols "
          f"({', '.join(sorted(wanted)[:4])}{', ...' if len(wanted) > 4 else ''})", file=sys.stderr)

print(f"[device_bundle] {len(bundle)} libraries ({len(stubs & bundle)} stubbed), "
      f"{total / 2**20:.1f} MiB before compression", file=sys.stderr)
with open(os.path.join(stage, "LIBS"), "w") as f:
    for name in sorted(bundle):
        f.write(f"{name}\t{'stub' if name in stubs else os.path.realpath(where[name])}\n")
EOF

# ---- 3. env.sh and BUILD_INFO ---------------------------------------------------------------
cat >"$stage/env.sh" <<'EOF'
# crema device bundle: `source .device/env.sh` (bash). Puts the bundle's bin/ on PATH and its
# lib/ first on LD_LIBRARY_PATH, then the CUDA libraries of PyTorch's nvidia-* wheels
# (site-packages/nvidia/*/lib and nvidia/*/*/lib of $CREMA_PYTHON, else python3, else
# /opt/torch/.venv/bin/python3), then /usr/local/cuda/lib64. Sets CREMA to the crema binary.
CREMA_BUNDLE=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)
_crema_nv=${CREMA_NV_LIBS:-}
for _crema_py in ${CREMA_PYTHON:-} python3 /opt/torch/.venv/bin/python3; do
  [[ -n $_crema_nv ]] && break
  command -v "$_crema_py" >/dev/null 2>&1 || continue
  _crema_nv=$("$_crema_py" - <<'PY' 2>/dev/null
import glob, os
import nvidia
dirs = []
for base in nvidia.__path__:
    for d in sorted(glob.glob(os.path.join(base, "*", "lib")) + glob.glob(os.path.join(base, "*", "*", "lib"))):
        if d not in dirs and glob.glob(os.path.join(d, "*.so*")):
            dirs.append(d)
print(":".join(dirs))
PY
  ) && [[ -n $_crema_nv ]] && break
  _crema_nv=""
done
if [[ -z $_crema_nv ]]; then
  _crema_nv=none
  echo "env.sh: no python with PyTorch's nvidia-* wheels found (set CREMA_PYTHON); using /usr/local/cuda/lib64 alone" >&2
fi
export CREMA_NV_LIBS=$_crema_nv  # searched once: bundle programs started from here reuse it
[[ $_crema_nv == none ]] && _crema_nv=""
case ":${LD_LIBRARY_PATH:-}:" in
  *":$CREMA_BUNDLE/lib:"*) ;;  # already set up (a bundle program run by another one)
  *) export LD_LIBRARY_PATH="$CREMA_BUNDLE/lib${_crema_nv:+:$_crema_nv}:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
esac
case ":$PATH:" in *":$CREMA_BUNDLE/bin:"*) ;; *) export PATH="$CREMA_BUNDLE/bin:$PATH" ;; esac
export CREMA="$CREMA_BUNDLE/bin/crema"
unset _crema_nv _crema_py
EOF
src_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
{
  echo "git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo none)$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo '+local' || true)"
  echo "built=$(date -u '+%Y-%m-%dT%H:%MZ') on $(hostname), $(. /etc/os-release && echo "$PRETTY_NAME"), CUDA sm_$arch"
  # crema_tests has these compiled in (CREMA_SOURCE_DIR, CREMA_BINARY): tests/data and the
  # model prototxts are read below the first, the crema binary is run from the second.
  echo "source_dir=$src_dir"
  echo "crema_binary=$(cd "$build" && pwd)/crema"
} >"$stage/BUILD_INFO"

# ---- 4. pack ------------------------------------------------------------------------------
mkdir -p "$out_dir"
rm -rf "${out_dir:?}/bin" "${out_dir:?}/libexec" "${out_dir:?}/lib" "${out_dir:?}/env.sh" "${out_dir:?}/BUILD_INFO" "${out_dir:?}/LIBS"
log "compressing (xz ${XZ_OPT:--9 -T1})"
tar -C "$stage" -cf - bin libexec lib env.sh BUILD_INFO LIBS | XZ_OPT=${XZ_OPT:--9 -T1} xz >"$work/bundle.tar.xz"
mv "$work/bundle.tar.xz" "$out_dir/bundle.tar.xz"
bytes=$(stat -c %s "$out_dir/bundle.tar.xz")
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
log "$out_dir/bundle.tar.xz: $mib MiB (unpacked $(du -sm "$stage" | cut -f1) MiB)"

# ---- 5. check -----------------------------------------------------------------------------
if [[ "${NO_CHECK:-0}" != 1 ]]; then
  check=$work/check
  mkdir -p "$check"
  tar -C "$check" -xJf "$out_dir/bundle.tar.xz"
  # Everything the three load must come from the bundle, from CUDA (wheels or toolkit), or be
  # the C runtime.
  bad=$(env -i PATH=/usr/bin:/bin HOME="$HOME" bash -c "source '$check/env.sh' 2>/dev/null &&
      ldd '$check/libexec/crema' '$check/libexec/crema_tests' '$check/lib/libcrema.so'" |
    awk '/=>/ { print $1, $3 }' | sort -u | grep -vE "^\S+ $check/lib/" |
    grep -vE '^(ld-linux|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libgcc_s\.so|libstdc\+\+\.so|libcudart|libcublas|libcublasLt|libcurand|libcudnn|libnccl|libcuda\.so)' || true)
  if [[ -n $bad ]]; then
    echo "$bad" >&2
    log "these libraries do not come from the bundle"
    exit 1
  fi
  if ! env -i PATH=/usr/bin:/bin HOME="$HOME" "$check/bin/crema" --help \
      >"$work/help.txt" 2>&1; then
    cat "$work/help.txt" >&2
    log "crema --help failed from the unpacked bundle"
    exit 1
  fi
  log "check passed: every library resolves into the bundle (or C runtime / CUDA); crema --help runs"
fi
if awk -v b="$bytes" -v m="$max_mib" 'BEGIN { exit !(b > m * 1048576) }'; then
  log "bundle is $mib MiB, above MAX_MIB=$max_mib: the working tree sent to the device may not fit"
  exit 1
fi
echo "bundle: .device/bundle.tar.xz $mib MiB"
