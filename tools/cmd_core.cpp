// The Caffe-style brew commands: train, test, time, device_query.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>

#include "crema.pb.h"
#include "crema/activation_copies.hpp"
#include "crema/io.hpp"
#include "crema/math_functions.hpp"
#include "crema/net.hpp"
#include "crema/parallel.hpp"
#include "crema/progress.hpp"
#include "crema/signal_handler.hpp"
#include "crema/solver.hpp"
#include "tools/command.hpp"
#ifdef CREMA_WITH_CUDA
#include <cuda_runtime.h>

#include "src/cuda_stream.hpp"
#include "src/cudnn_adapter.hpp"
#endif

DEFINE_string(solver, "", "train: the solver prototxt");
DEFINE_string(model, "", "test/time: the net prototxt");
DEFINE_string(weights, "",
              "train: .caffemodel(s) to fine-tune from (comma-separated); test: the weights "
              "to score");
DEFINE_string(snapshot, "", "train: a .solverstate to resume from");
DEFINE_string(gpu, "",
              "GPU device id(s): '0', '0,1' or 'all'. Empty: the CPU (or the solver's "
              "solver_mode/device_id)");
DEFINE_string(phase, "", "time/test: TRAIN or TEST (time defaults to TRAIN, test to TEST)");
DEFINE_int32(level, 0, "net state level");
DEFINE_string(stage, "", "net state stages, comma-separated");
DEFINE_int32(iterations, 50, "test/time: number of iterations");
DEFINE_bool(allow_cpu_fallback, false,
            "GPU mode: run layers that have no GPU code on the CPU (logged) instead of "
            "refusing to build the net");
DEFINE_string(sigint_effect, "stop",
              "what SIGINT (Ctrl-C) does while training: stop|snapshot|none");
DEFINE_string(cudnn_json, "",
              "device_query: write cuDNN's description of the GPU (JSON, cuDNN >= 9.8) to "
              "this file, for planning without it (tests/test_cudnn_deviceless.cpp)");
DEFINE_string(sighup_effect, "snapshot", "what SIGHUP does while training: stop|snapshot|none");

namespace crema {
namespace tools {
namespace {

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, separator))
    if (!part.empty()) parts.push_back(part);
  return parts;
}

std::vector<int> parse_gpu_ids(const std::string& flag) {
  std::vector<int> ids;
  if (flag.empty()) return ids;
  if (!Context::has_gpu_support())
    CREMA_THROW("--gpu=" << flag
                         << " asks for a GPU, but this crema was built without CUDA. Rebuild "
                            "on a machine with the CUDA toolkit (/usr/local/cuda), or drop "
                            "--gpu to run on the CPU.");
#ifdef CREMA_WITH_CUDA
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) count = 0;
  CREMA_REQUIRE(count > 0, "--gpu=" << flag << ": no CUDA device is visible on this machine");
  if (flag == "all") {
    for (int i = 0; i < count; ++i) ids.push_back(i);
    return ids;
  }
  for (const auto& part : split(flag, ',')) {
    char* end = nullptr;
    const long id = std::strtol(part.c_str(), &end, 10);
    CREMA_REQUIRE(*end == '\0' && id >= 0 && id < count,
                  "--gpu: '" << part << "' is not a device id (this machine has " << count
                             << " device(s): 0.." << count - 1 << ")");
    ids.push_back(static_cast<int>(id));
  }
#endif
  return ids;
}

Phase parse_phase(const std::string& flag, Phase fallback) {
  if (flag.empty()) return fallback;
  if (flag == "TRAIN") return Phase::TRAIN;
  if (flag == "TEST") return Phase::TEST;
  CREMA_THROW("--phase must be TRAIN or TEST, got '" << flag << "'");
}

void require_flag(const std::string& value, const char* flag, const char* command) {
  CREMA_REQUIRE(!value.empty(), "crema " << command << " needs --" << flag << " (see `crema "
                                         << command << " --help`)");
}

// Selects CPU or one GPU for a single-device command.
void select_device(const std::vector<int>& gpus) {
  Context::set_allow_cpu_fallback(FLAGS_allow_cpu_fallback);
  if (gpus.empty()) {
    Context::set_mode(Mode::CPU);
    return;
  }
  CREMA_REQUIRE(gpus.size() == 1, "this command runs on one device; got --gpu=" << FLAGS_gpu);
#ifdef CREMA_WITH_CUDA
  cudaSetDevice(gpus[0]);
#endif
  Context::set_device(gpus[0]);
  Context::set_mode(Mode::GPU);
  LOG(INFO) << "Using GPU " << gpus[0];
}

// ----------------------------------------------------------------------------------------
int RunTrain(const std::vector<std::string>& args) {
  require_flag(FLAGS_solver, "solver", "train");
  CREMA_REQUIRE(FLAGS_snapshot.empty() || FLAGS_weights.empty(),
                "give either --snapshot (resume) or --weights (fine-tune), not both");
  pb::SolverParameter solver_param;
  ReadSolverParamsFromTextFile(FLAGS_solver, &solver_param);
  solver_param.mutable_train_state()->set_level(FLAGS_level);
  for (const auto& stage : split(FLAGS_stage, ','))
    solver_param.mutable_train_state()->add_stage(stage);

  std::vector<int> gpus = parse_gpu_ids(FLAGS_gpu);
  if (gpus.empty() && solver_param.solver_mode() == pb::SolverParameter::GPU &&
      solver_param.has_solver_mode()) {
    if (Context::has_gpu_support()) {
      gpus.push_back(solver_param.device_id());
    } else {
      LOG(WARNING) << FLAGS_solver
                   << " asks for solver_mode: GPU, but this crema was built without CUDA: "
                      "training on the CPU.";
    }
  }
  std::set<int> distinct(gpus.begin(), gpus.end());
  CREMA_REQUIRE(distinct.size() == gpus.size(),
                "--gpu=" << FLAGS_gpu << " names a device twice; give each GPU once");
  if (gpus.size() > 1) {
    Context::set_allow_cpu_fallback(FLAGS_allow_cpu_fallback);
    Context::set_mode(Mode::GPU);
  } else {
    select_device(gpus);
  }
  solver_param.set_solver_mode(gpus.empty() ? pb::SolverParameter::CPU : pb::SolverParameter::GPU);
  if (!gpus.empty()) solver_param.set_device_id(gpus[0]);

  SignalHandler signals(FLAGS_sigint_effect, FLAGS_sighup_effect);
  // Fine-tuning: --weights, else the solver's own `weights` entries (Caffe's rules).
  std::vector<std::string> weights = split(FLAGS_weights, ',');
  if (weights.empty() && FLAGS_snapshot.empty())
    weights.assign(solver_param.weights().begin(), solver_param.weights().end());

  std::unique_ptr<Solver> solver;
  std::unique_ptr<TrainingProgress> progress;
  auto setup_root = [&](Solver& root) {
    root.SetActionFunction([&signals] { return signals.GetRequestedAction(); });
    progress = std::make_unique<TrainingProgress>(root);  // a status line only on a terminal
    root.add_callback(progress.get());
  };
  const auto start = std::chrono::steady_clock::now();
  if (gpus.size() > 1) {
    // Data parallelism: one solver per GPU (NCCL); weights are loaded by the root solver
    // and broadcast, the test nets (root only) share its parameters.
    LOG(INFO) << "Starting Optimization on " << gpus.size() << " GPUs";
    DataParallelOptions options;
    options.devices = gpus;
    options.resume_file = FLAGS_snapshot;
    options.weights = weights;
    options.setup_root = setup_root;
    solver = TrainDataParallel(solver_param, options);
  } else {
    solver.reset(CreateSolver(solver_param));
    setup_root(*solver);
    for (const auto& path : weights) {
      LOG(INFO) << "Fine-tuning from " << path;
      solver->net()->CopyTrainedLayersFrom(path);
      for (const auto& test_net : solver->test_nets()) test_net->CopyTrainedLayersFrom(path);
    }
    LOG(INFO) << "Starting Optimization";
    solver->Solve(FLAGS_snapshot);
  }
  progress->Finish();  // erase the status line before the summary goes to stdout
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  LOG(INFO) << "Optimization Done in " << std::fixed << std::setprecision(1) << seconds << " s.";

  // A short summary on stdout: what a user running the main job wants to read.
  std::cout << "Trained " << solver->iter() << " iterations in " << std::fixed
            << std::setprecision(1) << seconds << " s";
  if (solver->iter() > 0)
    std::cout << " (" << std::setprecision(2) << 1000.0 * seconds / solver->iter() << " ms/iter)";
  std::cout << "\n";
  const auto& scores = solver->last_test_scores();
  for (size_t n = 0; n < scores.size(); ++n)
    for (const auto& [name, value] : scores[n])
      std::cout << "Final test net #" << n << ": " << name << " = " << std::setprecision(4) << value
                << "\n";
  return 0;
}

REGISTER_COMMAND(
    "train", "train or fine-tune a net from a solver prototxt",
    "crema train --solver S.prototxt [--weights W.caffemodel[,W2...] | --snapshot "
    "S.solverstate] [--gpu ID | ID,ID... | all] [--level N] [--stage a,b]\n"
    "            [--sigint_effect stop|snapshot|none] [--sighup_effect "
    "stop|snapshot|none] [--threads N]\n\n"
    "Trains the net of the solver. --weights copies matching layers (by name) "
    "from trained models before training (fine-tuning);\n--snapshot resumes "
    "exactly where a .solverstate left off. Ctrl-C snapshots and stops; SIGHUP "
    "snapshots and continues.\nSeveral GPUs (--gpu 0,1 or --gpu all) train data-parallel "
    "with NCCL: each GPU runs the net's batch, gradients are averaged, so one "
    "iteration sees N batches.\n--allow_cpu_fallback runs layers without GPU code "
    "on the CPU instead of refusing the net.",
    RunTrain);

// ----------------------------------------------------------------------------------------
int RunTest(const std::vector<std::string>& args) {
  require_flag(FLAGS_model, "model", "test");
  require_flag(FLAGS_weights, "weights", "test");
  select_device(parse_gpu_ids(FLAGS_gpu));
  CREMA_REQUIRE(FLAGS_iterations > 0, "--iterations must be positive");
  Net net(FLAGS_model, parse_phase(FLAGS_phase, Phase::TEST), FLAGS_level, split(FLAGS_stage, ','));
  net.CopyTrainedLayersFrom(FLAGS_weights);
  LOG(INFO) << "Running for " << FLAGS_iterations << " iterations.";

  std::vector<std::pair<int, int>> output_ids;  // (output blob, element)
  std::vector<double> scores;
  double total_loss = 0;
  for (int i = 0; i < FLAGS_iterations; ++i) {
    float batch_loss = 0;
    const auto& outputs = net.Forward(&batch_loss);
    total_loss += batch_loss;
    int index = 0;
    for (size_t j = 0; j < outputs.size(); ++j) {
      const float* values = outputs[j]->cpu_data();
      for (int k = 0; k < outputs[j]->count(); ++k, ++index) {
        if (i == 0) {
          scores.push_back(values[k]);
          output_ids.emplace_back(static_cast<int>(j), k);
        } else {
          scores[index] += values[k];
        }
        LOG(INFO) << "Batch " << i << ", " << net.blob_names()[net.output_blob_indices()[j]]
                  << " = " << values[k];
      }
    }
  }
  total_loss /= FLAGS_iterations;
  LOG(INFO) << "Loss: " << total_loss;
  for (size_t i = 0; i < scores.size(); ++i) {
    const int blob_index = net.output_blob_indices()[output_ids[i].first];
    const std::string& name = net.blob_names()[blob_index];
    const float loss_weight = net.blob_loss_weights()[blob_index];
    const double mean = scores[i] / FLAGS_iterations;
    std::ostringstream line;
    line << name << " = " << mean;
    if (loss_weight != 0) line << " (* " << loss_weight << " = " << loss_weight * mean << " loss)";
    LOG(INFO) << line.str();
    std::cout << line.str() << "\n";
  }
  return 0;
}

REGISTER_COMMAND("test", "score a trained model on its TEST-phase data",
                 "crema test --model NET.prototxt --weights W.caffemodel [--iterations 50] "
                 "[--gpu ID] [--phase TEST] [--level N] [--stage a,b]\n\n"
                 "Runs --iterations forward passes and reports the mean of every output "
                 "(accuracy, loss ...).",
                 RunTest);

// ----------------------------------------------------------------------------------------
// Bytes of host memory the net's blobs actually hold (data and diff, each storage once;
// memory never touched is never allocated). Layer-internal scratch buffers are not included.
size_t allocated_bytes(const std::vector<const Blob*>& blobs) {
  std::set<const SyncedMemory*> seen;
  size_t bytes = 0;
  for (const Blob* blob : blobs) {
    for (const auto* memory : {blob->data().get(), blob->diff().get()}) {
      if (!memory || memory->head() == SyncedMemory::Head::UNINITIALIZED) continue;
      if (seen.insert(memory).second) bytes += memory->size();
    }
  }
  return bytes;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// Time stamps at layer boundaries: host clock readings on the CPU, CUDA events on the GPU
// (recorded on the compute stream, read after Finish() waits for the last one).
class LayerClock {
 public:
  LayerClock(bool gpu, int marks) : gpu_(gpu), host_(marks) {
#ifdef CREMA_WITH_CUDA
    if (gpu_) {
      events_.resize(marks);
      for (auto& event : events_) cudaEventCreate(&event);
    }
#endif
  }
  ~LayerClock() {
#ifdef CREMA_WITH_CUDA
    for (auto& event : events_) cudaEventDestroy(event);
#endif
  }
  void Mark(int k) {
#ifdef CREMA_WITH_CUDA
    if (gpu_) {
      cudaEventRecord(events_[k], cuda_stream());
      return;
    }
#endif
    host_[k] = std::chrono::steady_clock::now();
  }
  void Finish() {
#ifdef CREMA_WITH_CUDA
    if (gpu_) cudaDeviceSynchronize();
#endif
  }
  double Between(int a, int b) const {
#ifdef CREMA_WITH_CUDA
    if (gpu_) {
      float ms = 0;
      cudaEventElapsedTime(&ms, events_[a], events_[b]);
      return ms;
    }
#endif
    return std::chrono::duration<double, std::milli>(host_[b] - host_[a]).count();
  }

 private:
  bool gpu_;
  std::vector<std::chrono::steady_clock::time_point> host_;
#ifdef CREMA_WITH_CUDA
  std::vector<cudaEvent_t> events_;
#endif
};

int RunTime(const std::vector<std::string>& args) {
  require_flag(FLAGS_model, "model", "time");
  CREMA_REQUIRE(FLAGS_iterations > 0, "--iterations must be positive");
  select_device(parse_gpu_ids(FLAGS_gpu));
  const Phase phase = parse_phase(FLAGS_phase, Phase::TRAIN);
  Net net(FLAGS_model, phase, FLAGS_level, split(FLAGS_stage, ','));
  // Random 0/1 inputs (weights are random too: fillers): the timing does not depend on the
  // values, and 0/1 is valid for every kind of input: pixels, class labels, Embed indices
  // and sequence-continuation markers.
  std::vector<int> bits;
  for (Blob* input : net.input_blobs()) {
    Context::reseed(7, 0);
    bits.resize(input->count());
    cpu_rng_bernoulli(input->count(), 0.5f, bits.data());
    float* data = input->mutable_cpu_data();
    for (int i = 0; i < input->count(); ++i) data[i] = static_cast<float>(bits[i]);
  }
  const int num_layers = net.num_layers();
  const auto& layers = net.layers();
  const auto& bottoms = net.bottom_vecs();
  const auto& tops = net.top_vecs();
  const auto& need_backward = net.bottom_need_backward();
  const bool do_backward = phase == Phase::TRAIN;

  LOG(INFO) << "Performing a warm-up Forward" << (do_backward ? " and Backward" : "") << ".";
  net.Forward();
  if (do_backward)
    for (int i = num_layers - 1; i >= 0; --i)
      layers[i]->Backward(tops[i], need_backward[i], bottoms[i]);

  // On the CPU each layer is timed with the host clock. On the GPU the layers only queue
  // work, so each layer boundary records a CUDA event instead, and the host waits once per
  // iteration: the per-layer times are the device's, and the launch overhead of one layer
  // overlaps the kernels of the previous one, as in training.
  using clock = std::chrono::steady_clock;
  const bool gpu = Context::mode() == Mode::GPU;
  auto ms_since = [](clock::time_point t) {
    return std::chrono::duration<double, std::milli>(clock::now() - t).count();
  };
  LayerClock layer_clock(gpu, 2 * num_layers + 1);
  std::vector<std::vector<double>> forward_ms(num_layers), backward_ms(num_layers);
  std::vector<double> forward_total, backward_total, iteration_total;
  for (int it = 0; it < FLAGS_iterations; ++it) {
    const auto iteration_start = clock::now();
    int mark = 0;
    layer_clock.Mark(mark++);
    // ForwardStep runs a chain fused on the GPU at test time (a convolution with the
    // BatchNorm, Scale, ReLU or sum after it; BatchNorm + Scale + ReLU; Eltwise + ReLU) as a
    // unit: its time goes to its first layer, the others show 0.
    float unused_loss = 0;
    for (int i = 0; i < num_layers;) {
      const int next = net.ForwardStep(i, num_layers - 1, &unused_loss);
      for (; i < next; ++i) layer_clock.Mark(mark++);
    }
    if (do_backward) {
      for (int i = num_layers - 1; i >= 0; --i) {
        // Every layer runs its backward, as Caffe's `time` does, so a deploy net (no loss)
        // still reports the cost of its parameter gradients.
        layers[i]->Backward(tops[i], need_backward[i], bottoms[i]);
        layer_clock.Mark(mark++);
      }
    }
    layer_clock.Finish();
    iteration_total.push_back(gpu ? layer_clock.Between(0, mark - 1) : ms_since(iteration_start));
    double forward_sum = 0, backward_sum = 0;
    for (int i = 0; i < num_layers; ++i) {
      forward_ms[i].push_back(layer_clock.Between(i, i + 1));
      forward_sum += forward_ms[i].back();
    }
    if (do_backward) {
      for (int k = 0; k < num_layers; ++k) {  // the k-th backward is layer num_layers-1-k
        const int i = num_layers - 1 - k;
        backward_ms[i].push_back(layer_clock.Between(num_layers + k, num_layers + k + 1));
        backward_sum += backward_ms[i].back();
      }
    }
    forward_total.push_back(forward_sum);
    backward_total.push_back(backward_sum);
  }

  // On the GPU, the same passes again end to end: one event per iteration, none between
  // layers and no wait until the last, as frameworks are usually timed, and the forward pass
  // as Net::Forward runs it: replaying CUDA graphs (src/net_graph.hpp) captured in one
  // untimed pass first. (On the CPU the per-layer clock readings cost nothing: the sums
  // above are the end-to-end times.)
  std::vector<double> whole_net;
  if (gpu) {
    net.Forward();
    LayerClock whole(gpu, FLAGS_iterations + 1);
    for (int it = 0; it < FLAGS_iterations; ++it) {
      whole.Mark(it);
      net.Forward();
      if (do_backward)
        for (int i = num_layers - 1; i >= 0; --i)
          layers[i]->Backward(tops[i], need_backward[i], bottoms[i]);
    }
    whole.Mark(FLAGS_iterations);
    whole.Finish();
    for (int it = 0; it < FLAGS_iterations; ++it) whole_net.push_back(whole.Between(it, it + 1));
  }

  // Table: per layer forward/backward ms (mean over iterations), FLOPs, GFLOP/s, share.
  double total_mean = 0;
  std::vector<double> fwd_mean(num_layers), bwd_mean(num_layers), flops(num_layers);
  for (int i = 0; i < num_layers; ++i) {
    for (double v : forward_ms[i]) fwd_mean[i] += v / FLAGS_iterations;
    for (double v : backward_ms[i]) bwd_mean[i] += v / FLAGS_iterations;
    flops[i] = layers[i]->ForwardFlops(bottoms[i], tops[i]);
    total_mean += fwd_mean[i] + bwd_mean[i];
  }
  std::ostringstream table;
  table << std::fixed;
  table << "Average time per layer (" << FLAGS_iterations << " iterations, batch of "
        << (net.input_blobs().empty() ? (tops.empty() || tops[0].empty() ? 0 : tops[0][0]->shape(0))
                                      : net.input_blobs()[0]->shape(0))
        << ", " << Context::num_threads() << " threads):\n";
  table << std::left << std::setw(24) << "layer" << std::setw(16) << "type" << std::right
        << std::setw(12) << "fwd ms" << std::setw(12) << "bwd ms" << std::setw(12) << "MFLOP"
        << std::setw(12) << "GFLOP/s" << std::setw(9) << "share\n";
  for (int i = 0; i < num_layers; ++i) {
    const double total = fwd_mean[i] + bwd_mean[i];
    // For GEMM-shaped layers each gradient (parameters, bottom) costs about one forward.
    double passes = 1;
    if (do_backward) {
      bool param_grad = false, bottom_grad = false;
      for (size_t p = 0; p < layers[i]->blobs().size(); ++p)
        param_grad |= layers[i]->param_propagate_down(static_cast<int>(p));
      for (bool b : need_backward[i]) bottom_grad |= b;
      passes += (param_grad ? 1 : 0) + (bottom_grad ? 1 : 0);
    }
    const double layer_flops = flops[i] * passes;
    const double gflops = total > 0 ? layer_flops / (total * 1e6) : 0;
    table << std::left << std::setw(24) << net.layer_names()[i] << std::setw(16)
          << layers[i]->type() << std::right << std::setprecision(3) << std::setw(12) << fwd_mean[i]
          << std::setw(12) << bwd_mean[i] << std::setprecision(1) << std::setw(12) << flops[i] / 1e6
          << std::setw(12) << (flops[i] > 0 ? gflops : 0.0) << std::setw(8)
          << (total_mean > 0 ? 100.0 * total / total_mean : 0.0) << "%\n";
    LOG(INFO) << std::setw(24) << net.layer_names()[i] << "\tforward: " << fwd_mean[i] << " ms.";
    if (do_backward)
      LOG(INFO) << std::setw(24) << net.layer_names()[i] << "\tbackward: " << bwd_mean[i] << " ms.";
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / v.size();
  };
  table << std::setprecision(3);
  table << "Average Forward pass: " << mean(forward_total) << " ms (median "
        << median(forward_total) << ")\n";
  if (do_backward)
    table << "Average Backward pass: " << mean(backward_total) << " ms (median "
          << median(backward_total) << ")\n";
  table << "Average Forward-Backward: " << mean(iteration_total) << " ms (median "
        << median(iteration_total) << ")\n";
  if (!whole_net.empty())
    table << "Whole net, " << (do_backward ? "forward-backward" : "forward")
          << " without per-layer marks: " << mean(whole_net) << " ms (median " << median(whole_net)
          << ")\n";
  if (!net.graph_summary().empty()) table << net.graph_summary() << "\n";
  const MixedPrecision* mixed = net.mixed_precision();
  if (mixed && IsHalfPrecision(mixed->precision) && Context::mode() == Mode::GPU) {
    const ActivationCopies::Counts& copies = mixed->copies->counts();
    table << "16-bit activation copies: " << copies.hits << " convolution inputs taken from "
          << "their producer, " << copies.misses << " rounded by the convolution (passes that "
          << "ran host code; CREMA_ACTIVATION_COPIES=0: off); the copies hold "
          << std::setprecision(1) << mixed->copies->bytes() / 1048576.0 << " MiB\n";
  }
  double total_flops = 0;
  for (double f : flops) total_flops += f;
  std::vector<const Blob*> activations, parameters;
  for (const auto& blob : net.blobs()) activations.push_back(blob.get());
  for (const auto& blob : net.params()) parameters.push_back(blob.get());
  table << "Peak memory of the net's blobs: activations " << std::setprecision(1)
        << allocated_bytes(activations) / 1048576.0 << " MiB, parameters "
        << allocated_bytes(parameters) / 1048576.0 << " MiB (data and gradients)\n";
  table << "Total forward GFLOP per iteration: " << std::setprecision(4) << total_flops / 1e9
        << "\n";
  std::cout << table.str();
  LOG(INFO) << "Average Forward pass: " << mean(forward_total) << " ms.";
  if (do_backward) LOG(INFO) << "Average Backward pass: " << mean(backward_total) << " ms.";
  LOG(INFO) << "Average Forward-Backward: " << mean(iteration_total) << " ms.";
  return 0;
}

REGISTER_COMMAND("time", "time a net's forward and backward passes, layer by layer",
                 "crema time --model NET.prototxt [--iterations 50] [--phase TRAIN|TEST] "
                 "[--gpu ID] [--threads N]\n\n"
                 "Random weights (fillers) and random 0/1 inputs. Every layer runs its "
                 "backward (as Caffe's time does).\nPrints per-layer forward and "
                 "backward milliseconds, FLOPs, achieved GFLOP/s and each layer's share.",
                 RunTime);

// ----------------------------------------------------------------------------------------
int RunDeviceQuery(const std::vector<std::string>& args) {
  const std::vector<int> gpus = parse_gpu_ids(FLAGS_gpu.empty() ? "all" : FLAGS_gpu);
#ifdef CREMA_WITH_CUDA
  for (int id : gpus) {
    cudaDeviceProp prop{};
    CREMA_REQUIRE(cudaGetDeviceProperties(&prop, id) == cudaSuccess,
                  "cannot query CUDA device " << id);
    std::cout << "Device id:                     " << id << "\n"
              << "Name:                          " << prop.name << "\n"
              << "Compute capability:            " << prop.major << "." << prop.minor << "\n"
              << "Total global memory:           " << prop.totalGlobalMem << "\n"
              << "Shared memory per block:       " << prop.sharedMemPerBlock << "\n"
              << "Registers per block:           " << prop.regsPerBlock << "\n"
              << "Warp size:                     " << prop.warpSize << "\n"
              << "Max threads per block:         " << prop.maxThreadsPerBlock << "\n"
              << "Number of multiprocessors:     " << prop.multiProcessorCount << "\n"
              << "L2 cache size:                 " << prop.l2CacheSize << "\n"
              << "cuDNN:                         " << cudnn::VersionString() << "\n";
  }
  if (!FLAGS_cudnn_json.empty()) {
    CREMA_REQUIRE(gpus.size() == 1, "--cudnn_json describes one GPU: give one --gpu ID");
    const std::string json = cudnn::DevicePropertiesJson(gpus[0]);
    std::ofstream out(FLAGS_cudnn_json);
    out << json << "\n";
    CREMA_REQUIRE(out.good(), "cannot write " << FLAGS_cudnn_json);
    std::cout << "cuDNN's description of device " << gpus[0] << ": " << FLAGS_cudnn_json << "\n";
  }
#else
  CREMA_REQUIRE(FLAGS_cudnn_json.empty(), "--cudnn_json needs a crema built with CUDA and cuDNN");
#endif
  return 0;
}

REGISTER_COMMAND(
    "device_query", "show the properties of the GPU(s)",
    "crema device_query [--gpu ID|all] [--cudnn_json FILE]\n\nNeeds a crema built with "
    "CUDA. --cudnn_json writes cuDNN's description of one GPU (cuDNN >= 9.8),\n"
    "with which cuDNN plans for that GPU on machines without one.",
    RunDeviceQuery);

}  // namespace
}  // namespace tools
}  // namespace crema
