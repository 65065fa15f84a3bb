// Does the data layers' prefetch thread hide data loading behind compute?
//
// A folder of PNG images (noise, 480 x 480 RGB by default, so decoding, resizing to 64 x 64
// and transforming them is real work) feeds an ImageData layer (batch 32); a stack of
// InnerProduct layers, sized at start-up so that its forward + backward costs about as much
// as loading a batch, is the compute. Four numbers per configuration, in ms per iteration:
//
//   load      the ImageData layer alone (the consumer is instant: producer throughput)
//   compute   the InnerProduct stack alone, fed by an Input layer
//   sum       load + compute: what a loader without prefetching would cost
//   overlap   the whole net, ImageData with data_param.prefetch = depth
//
// With prefetch (depth >= 1; 4 is the default) "overlap" should be close to
// max(load, compute), not the sum. Compute runs single-threaded (--threads N to change) so
// that on a 2-core machine the producer has a core of its own.
//
//   bench_prefetch [--images N] [--size S] [--batch B] [--iters K] [--threads T]
//
// A plain main (no Google Benchmark fixtures): the measurement is one pipeline, not a
// kernel. The PNG files are written with a minimal encoder below (stored deflate blocks),
// because this program links only crema.
#include <google/protobuf/text_format.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/common.hpp"
#include "crema/net.hpp"

namespace {

// --- a minimal PNG writer: 8-bit RGB, filter 0, zlib stream of stored blocks ------------

uint32_t Crc32(const uint8_t* data, size_t n, uint32_t crc = 0) {
  static uint32_t table[256];
  static bool ready = false;
  if (!ready) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    ready = true;
  }
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void PutBE32(std::vector<uint8_t>* out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<uint8_t>(v >> s));
}

void Chunk(std::vector<uint8_t>* png, const char* type, const std::vector<uint8_t>& body) {
  PutBE32(png, static_cast<uint32_t>(body.size()));
  std::vector<uint8_t> typed(type, type + 4);
  typed.insert(typed.end(), body.begin(), body.end());
  png->insert(png->end(), typed.begin(), typed.end());
  PutBE32(png, Crc32(typed.data(), typed.size()));
}

void WritePng(const std::string& path, int width, int height, std::mt19937& rng) {
  std::vector<uint8_t> raw;  // filter byte + RGB per row
  raw.reserve(static_cast<size_t>(height) * (1 + 3 * width));
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    for (int x = 0; x < 3 * width; ++x) raw.push_back(static_cast<uint8_t>(rng()));
  }
  std::vector<uint8_t> z{0x78, 0x01};
  for (size_t at = 0; at < raw.size();) {
    const size_t n = std::min<size_t>(65535, raw.size() - at);
    z.push_back(at + n == raw.size() ? 1 : 0);
    z.push_back(static_cast<uint8_t>(n & 0xFF));
    z.push_back(static_cast<uint8_t>(n >> 8));
    z.push_back(static_cast<uint8_t>(~n & 0xFF));
    z.push_back(static_cast<uint8_t>((~n >> 8) & 0xFF));
    z.insert(z.end(), raw.begin() + at, raw.begin() + at + n);
    at += n;
  }
  uint32_t a = 1, b = 0;
  for (uint8_t v : raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  PutBE32(&z, (b << 16) | a);
  std::vector<uint8_t> png{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> header;
  PutBE32(&header, static_cast<uint32_t>(width));
  PutBE32(&header, static_cast<uint32_t>(height));
  header.insert(header.end(), {8, 2, 0, 0, 0});  // 8-bit, RGB, deflate, filter 0, no interlace
  Chunk(&png, "IHDR", header);
  Chunk(&png, "IDAT", z);
  Chunk(&png, "IEND", {});
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(png.data()), png.size());
}

// --- nets -----------------------------------------------------------------------------

crema::pb::NetParameter ParseNet(const std::string& text) {
  crema::pb::NetParameter param;
  if (!google::protobuf::TextFormat::ParseFromString(text, &param)) {
    std::fprintf(stderr, "bench_prefetch: bad net text\n%s\n", text.c_str());
    std::exit(1);
  }
  param.mutable_state()->set_phase(crema::pb::TRAIN);
  return param;
}

std::string ImageDataLayer(const std::string& list, const std::string& root, int batch, int depth) {
  return "layer { name: 'data' type: 'ImageData' top: 'data' top: 'label' image_data_param { "
         "source: '" +
         list + "' root_folder: '" + root + "/' batch_size: " + std::to_string(batch) +
         " shuffle: true new_height: 64 new_width: 64 } "
         "transform_param { mirror: true crop_size: 56 scale: 0.00390625 mean_value: 128 } "
         "data_param { prefetch: " +
         std::to_string(depth) + " } }\n";
}

std::string InputLayer(int batch) {
  return "layer { name: 'data' type: 'DummyData' top: 'data' top: 'label' dummy_data_param { "
         "shape { dim: " +
         std::to_string(batch) +
         " dim: 3 dim: 56 dim: 56 } "
         "shape { dim: " +
         std::to_string(batch) +
         " } "
         "data_filler { type: 'gaussian' std: 1 } data_filler { type: 'constant' value: 1 } } }\n";
}

std::string ComputeLayers(int width, int depth) {
  std::string text;
  std::string bottom = "data";
  for (int i = 0; i < depth; ++i) {
    const std::string name = "ip" + std::to_string(i);
    text += "layer { name: '" + name + "' type: 'InnerProduct' bottom: '" + bottom + "' top: '" +
            name + "' inner_product_param { num_output: " + std::to_string(width) +
            " weight_filler { type: 'gaussian' std: 0.01 } } }\n";
    text += "layer { name: 'relu" + std::to_string(i) + "' type: 'ReLU' bottom: '" + name +
            "' top: '" + name + "' }\n";
    bottom = name;
  }
  text += "layer { name: 'score' type: 'InnerProduct' bottom: '" + bottom +
          "' top: 'score' inner_product_param { num_output: 10 weight_filler { type: 'gaussian' "
          "std: 0.01 } } }\n"
          "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'score' bottom: 'label' top: "
          "'loss' }\n";
  return text;
}

double ProcessCpuMs() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
}

// Milliseconds per iteration of `step`, after `warmup` untimed iterations; *cores gets the
// process CPU time / wall time over the timed iterations (2 = two cores busy throughout).
template <typename Step>
double TimePerIter(Step step, int warmup, int iters, double* cores = nullptr) {
  for (int i = 0; i < warmup; ++i) step();
  const double cpu_start = ProcessCpuMs();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) step();
  const double wall =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (cores) *cores = (ProcessCpuMs() - cpu_start) / wall;
  return wall / iters;
}

int IntFlag(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int images = IntFlag(argc, argv, "--images", 96);
  const int size = IntFlag(argc, argv, "--size", 480);
  const int batch = IntFlag(argc, argv, "--batch", 32);
  const int iters = IntFlag(argc, argv, "--iters", 12);
  const int threads = IntFlag(argc, argv, "--threads", 1);
  crema::Context::set_num_threads(threads);
  crema::Context::set_random_seed(1);

  char dir_template[] = "/tmp/crema_bench_prefetch_XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string list = dir + "/list.txt";
  {
    std::mt19937 rng(7);
    std::ofstream out(list);
    for (int i = 0; i < images; ++i) {
      const std::string name = "im" + std::to_string(i) + ".png";
      WritePng(dir + "/" + name, size, size, rng);
      out << name << " " << i % 10 << "\n";
    }
  }
  std::printf("%d PNG images of %dx%d RGB (%.1f MB each), batch %d, compute threads %d\n", images,
              size, size, 3.0 * size * size / 1e6, batch, threads);

  // Load alone: the producer is the bottleneck, so after the warm-up (which drains the
  // prefetched batches) each Forward waits for exactly one batch load.
  double load_ms = 0, load_cores = 0, compute_cores = 0;
  {
    crema::Net net(ParseNet("name: 'load'\n" + ImageDataLayer(list, dir, batch, 4)));
    load_ms = TimePerIter([&] { net.Forward(); }, 6, iters, &load_cores);
  }

  // Size the compute to about the load time: width of a 3-layer InnerProduct stack.
  int width = 256;
  double compute_ms = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    crema::Net net(ParseNet("name: 'compute'\n" + InputLayer(batch) + ComputeLayers(width, 3)));
    compute_ms = TimePerIter([&] { net.ForwardBackward(); }, 2, std::max(3, iters / 2));
    const double ratio = load_ms / compute_ms;
    if (ratio > 0.8 && ratio < 1.25) break;
    // Cost grows ~linearly in width (first layer dominates) plus quadratically (the others).
    width = std::max(16, static_cast<int>(width * std::min(4.0, std::max(0.25, ratio))));
  }
  {
    crema::Net net(ParseNet("name: 'compute'\n" + InputLayer(batch) + ComputeLayers(width, 3)));
    compute_ms = TimePerIter([&] { net.ForwardBackward(); }, 2, iters, &compute_cores);
  }

  std::printf("compute: 3 x InnerProduct(%d) + ReLU on 3x56x56 inputs, forward + backward\n\n",
              width);
  std::printf("CPU cores busy: load alone %.2f, compute alone %.2f\n\n", load_cores, compute_cores);
  std::printf("%-10s %10s %10s %10s %12s %12s %10s\n", "prefetch", "load ms", "compute ms",
              "sum ms", "overlap ms", "overlap/max", "cores");
  for (int depth : {1, 4}) {
    crema::Net net(ParseNet("name: 'both'\n" + ImageDataLayer(list, dir, batch, depth) +
                            ComputeLayers(width, 3)));
    double cores = 0;
    const double both_ms = TimePerIter([&] { net.ForwardBackward(); }, 6, iters, &cores);
    std::printf("%-10d %10.2f %10.2f %10.2f %12.2f %12.2f %10.2f\n", depth, load_ms, compute_ms,
                load_ms + compute_ms, both_ms, both_ms / std::max(load_ms, compute_ms), cores);
  }
  std::printf(
      "\n'overlap' close to max(load, compute) (ratio near 1) means the prefetch thread "
      "hides the loading; near sum/max it does not.\n");
  std::filesystem::remove_all(dir);
  return 0;
}
