#!/usr/bin/env bash
# Runs crema's GPU tests without a GPU, on crema's CUDA emulator (tests/cuda_emu/).
#
#   bash tools/emu_check.sh            # build into build-emu/ and run every GPU test
#   bash tools/emu_check.sh -R Lenet   # extra arguments go to ctest
#
# The GPU code (.cu) is compiled as C++ against a host emulation of the CUDA runtime, cuBLAS,
# cuDNN and NCCL: each CUDA thread is a fiber (so __syncthreads and warp shuffles keep their
# meaning), threads run in a changing order (so races show), and device memory is readable
# only inside device operations (so a host dereference of a device pointer faults), and work
# queued on a stream runs only when something synchronises with it (so a host read without
# the synchronisation CUDA requires sees stale data). Under TF32 math, cuBLAS GEMMs and FLOAT
# cuDNN convolutions read their operands rounded to TF32, as tensor cores do, so tolerances
# meant for TF32 are tested at TF32's precision. It checks what the GPU code computes and
# which memory it touches; it says nothing about speed. Two emulated devices are visible
# (CREMA_EMU_DEVICES) so the multi-GPU tests run too. CREMA_EMU_SYNC=1 runs streams eagerly,
# CREMA_EMU_ORDER=linear runs threads in index order, CREMA_EMU_PROTECT=0 leaves device memory
# readable: switches for telling an emulator artefact from a bug.
# Needs the CUDA headers (/usr/local/cuda/include), not a GPU or the CUDA libraries.
# Knobs: CREMA_BUILD_DIR (build-emu), CREMA_JOBS, CREMA_TEST_JOBS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
export CREMA_BUILD_DIR=${CREMA_BUILD_DIR:-build-emu}
bash tools/build.sh -DCREMA_CUDA_EMULATOR=ON -DCREMA_BUILD_BENCH=OFF
cd "$CREMA_BUILD_DIR"
export CREMA_EMU_DEVICES=${CREMA_EMU_DEVICES:-2}
ctest -j "${CREMA_TEST_JOBS:-2}" --output-on-failure --timeout 900 -R 'Gpu|CudaEmulator' "$@"
