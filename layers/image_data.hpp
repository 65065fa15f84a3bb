// ImageDataLayer (type "ImageData"): batches of image files listed in a text file, decoded
// with OpenCV, transformed, prefetched.
//   bottom: none        top: data [batch_size, C, H', W'], label [batch_size]
//   image_data_param:
//     source       text file, one "path label" per line: the label is the integer after the
//                  last space; a line without a space is a path with label 0 (blank lines
//                  are skipped). Missing or empty list: error at setup.
//     root_folder  prefix joined to every path (plain string concatenation, as Caffe).
//     batch_size   items per batch (default 1).
//     shuffle      visit the list in a new random order every epoch.
//     rand_skip    when > 0, the first Rand(rand_skip) entries are skipped once (the draw
//                  depends on the random seed only).
//     new_height, new_width   both 0 (keep the size) or both > 0: cv::resize (bilinear) to
//                  new_width x new_height.
//     is_color     true: decode as 3-channel BGR; false: as 1-channel grey.
//   data_param.prefetch: batches prepared ahead (default 4), as in Caffe, where every
//     prefetching layer reads its depth from data_param.
//   transform_param: see crema/data_transformer.hpp (the image is handed over as a raw
//     C x H x W uint8 Datum, which is exactly Caffe's cv::Mat transform).
//   forward: item i of batch k is list entry order_e[p mod N], p = skip + k * batch_size + i,
//     e = p / N (N = list length; order_e = identity, or with shuffle a permutation drawn
//     from a generator seeded by (random seed, layer, e)); label = its integer label. The
//     transform draws Caffe's numbers (TransformRandomStream: one generator seeded at setup
//     as Caffe seeds its transformer, + rank with several solvers), so without shuffle the
//     crops and mirrors are Caffe's. Batch k depends only on (list, seed, k): SeekBatch(k)
//     resumes exactly.
//     [C, H', W'] is that of the batch's first image (as Caffe, batches of one image may
//     change size from batch to batch); every other image of the batch must match it.
//     A missing or undecodable image throws crema::Error naming the file when the batch
//     that needs it is delivered.
//     With several solvers (TRAIN), every rank reads the whole list, as in Caffe; the rank
//     is part of the seed, so with shuffle the ranks see different orders.
//   backward: nothing
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "crema/data_transformer.hpp"
#include "crema/layer.hpp"
#include "crema/prefetch.hpp"

namespace crema {

class ImageDataLayer : public Layer {
 public:
  explicit ImageDataLayer(const pb::LayerParameter& param);
  ~ImageDataLayer() override;
  const char* type() const override { return "ImageData"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override {}
  int ExactNumBottomBlobs() const override { return 0; }
  int ExactNumTopBlobs() const override { return 2; }

  void SeekBatch(int64_t index) override;
  int64_t next_batch() const { return prefetcher_.next_index(); }
  // The list as read: (root_folder + path, label).
  const std::vector<std::pair<std::string, int>>& lines() const { return lines_; }
  // Index into lines() of item `position` (counted from the first item of batch 0).
  size_t LineOfItem(int64_t position) const;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {}

 private:
  bool LoadBatch(PrefetchBatch* batch, int64_t index);
  // Reads one image as Caffe's ReadImageToCVMat does, into a raw Datum; throws naming it.
  void ReadImage(const std::string& path, pb::Datum* datum) const;
  // The visiting order of epoch `epoch` (identity without shuffle).
  void ComputeOrder(int64_t epoch, std::vector<uint32_t>* order) const;

  std::vector<std::pair<std::string, int>> lines_;
  int batch_size_ = 1;
  int new_height_ = 0, new_width_ = 0;
  bool is_color_ = true;
  bool shuffle_ = false;
  uint64_t skip_ = 0;
  uint64_t seed_stream_ = 0;
  std::unique_ptr<DataTransformer> transformer_;
  TransformRandomStream transform_random_;
  std::unique_ptr<pb::Datum> datum_;  // producer thread scratch

  // Producer-thread cache of the current epoch's order (shuffle only).
  int64_t cached_epoch_ = -1;
  std::vector<uint32_t> order_;

  BatchPrefetcher prefetcher_;

#ifdef CREMA_WITH_CUDA
 public:
  // GPU mode: decoding and transforms run on the host (producer thread); the prefetcher copies
  // each batch to the device asynchronously and the tops alias the device buffers.
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override {
    Forward_cpu(bottom, top);
  }
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {
    Backward_cpu(top, propagate_down, bottom);
  }
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
