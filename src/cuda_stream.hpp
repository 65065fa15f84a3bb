// The CUDA stream that carries crema's GPU work (CUDA builds only).
#pragma once

#include <cuda_runtime.h>

namespace crema {

// Every kernel, copy, cuBLAS and cuDNN call crema queues from a host thread goes to that
// thread's per-thread default stream on the current device: one in-order queue per
// solver thread (and per GPU in multi-GPU training), nothing to create or destroy, and,
// unlike the legacy default stream, one that can be captured into a CUDA graph
// (src/cuda_graph.hpp). It still synchronises with the legacy stream, so code that uses
// the latter stays correct, only not capturable.
inline cudaStream_t cuda_stream() {
  return cudaStreamPerThread;
}

}  // namespace crema
