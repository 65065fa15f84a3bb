// Shared basics: the user-error type, the global execution context (mode, RNG), and
// forward declarations of the generated protobuf messages so public headers need not
// include crema.pb.h.
#pragma once

#include <glog/logging.h>

#include <cstdint>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace crema {

// Messages generated from proto/crema.proto (package crema.pb). Only .cpp files include
// "crema.pb.h"; headers use these declarations.
namespace pb {
class BlobProto;
class BlobShape;
class Datum;
class FillerParameter;
class LayerParameter;
class NetParameter;
class NetState;
class NetStateRule;
class ParamSpec;
class SolverParameter;
class SolverState;
class TransformationParameter;
}  // namespace pb

// A mistake in what the user gave us (prototxt, weights, data, flags). The CLI catches it,
// prints the message as one paragraph and exits with status 1. Internal invariants use
// glog's CHECK instead: those are bugs in crema, not in the user's input.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// CREMA_THROW("layer " << name << " wants " << n << " bottoms")
#define CREMA_THROW(message)                         \
  do {                                               \
    std::ostringstream crema_error_stream_;          \
    crema_error_stream_ << message;                  \
    throw ::crema::Error(crema_error_stream_.str()); \
  } while (0)

#define CREMA_REQUIRE(condition, message)   \
  do {                                      \
    if (!(condition)) CREMA_THROW(message); \
  } while (0)

enum class Mode { CPU, GPU };

// Same numeric values as pb::Phase.
enum class Phase { TRAIN = 0, TEST = 1 };

// Process-wide execution settings, in the spirit of Caffe's singleton. The RNG is
// thread-local: each thread (solver, prefetch) owns its generator.
class Context {
 public:
  static Mode mode();
  static void set_mode(Mode mode);
  static int device_id();  // the calling thread's device (see solver_rank below)
  static void set_device(int device_id);

  // Seeds the calling thread's generator and remembers the seed so new threads can derive
  // theirs from it. A negative seed means "from the clock". A seed s >= 0 seeds the
  // generator as Caffe's Caffe::set_random_seed does: std::mt19937(uint32_t(s)), which is
  // the same engine and sequence as Caffe's boost::mt19937.
  static void set_random_seed(int64_t seed);
  static int64_t random_seed();
  static std::mt19937& rng();
  // Reseeds the calling thread's generator from (base seed, stream, index): used to make
  // the randomness of iteration `index` independent of history, so resume is exact.
  static void reseed(uint64_t stream, uint64_t index);
  static uint64_t derive_seed(uint64_t stream, uint64_t index);

  // Number of worker threads crema's own kernels and OpenBLAS use.
  static int num_threads();
  static void set_num_threads(int n);

  // Multi-device data parallelism: solver_count solvers train together, one per device,
  // each on its own thread. device_id and solver_rank are per thread (0 in a new thread).
  static int solver_count();
  static void set_solver_count(int n);
  static int solver_rank();
  static void set_solver_rank(int r);
  static bool root_solver() { return solver_rank() == 0; }

  // True when crema was built with CUDA.
  static bool has_gpu_support();

  // Whether Layer::Forward computes the loss value on the GPU (a device-to-host read that
  // waits for the GPU). The solver turns it off for training iterations whose loss nobody
  // reads, so an iteration runs without host synchronisation. Per thread; default on.
  static bool loss_readback();
  static void set_loss_readback(bool on);

  // GPU mode and a layer without GPU code: by default building the net fails, naming the
  // layers. With fallback allowed (crema --allow_cpu_fallback) such layers run their CPU code
  // in GPU mode, their blobs copied between host and device around them; the net logs
  // each one at construction.
  static bool allow_cpu_fallback();
  static void set_allow_cpu_fallback(bool allow);
};

// "2 3 4 5 (120)": a shape as Caffe logs it.
std::string shape_string(const std::vector<int>& shape);

}  // namespace crema
