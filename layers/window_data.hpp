// WindowDataLayer (type "WindowData"): R-CNN style batches of image windows, warped to a
// square, sampled from foreground and background sets; prefetched.
//   bottom: none        top: data [batch_size, C, crop_size, crop_size], label [batch_size]
//   window file (window_data_param.source), repeated for each image:
//       # <image index>
//       <image path>          (root_folder is prepended)
//       <channels> <height> <width>
//       <number of windows>
//       <class> <overlap> <x1> <y1> <x2> <y2>      (one line per window; inclusive pixels)
//     A window with overlap >= fg_threshold is foreground (its class must be > 0); one with
//     overlap < bg_threshold is background (class and overlap forced to 0); others are
//     dropped. Windows refer to the images by their position in the file.
//   settings: window_data_param.batch_size, fg_threshold (0.5), bg_threshold (0.5),
//     fg_fraction (0.25), context_pad (0), crop_mode ("warp" | "square"), cache_images
//     (keep the encoded files in memory), root_folder; transform_param.crop_size (> 0, the
//     output size), mirror, mean_file / mean_value; scale: window_data_param.scale when set,
//     else transform_param.scale. data_param.prefetch: batches prepared ahead (default 4).
//   forward (batch k, with a generator seeded by (random seed, layer, k)):
//     num_fg = int(float(batch_size) * fg_fraction); items 0 .. batch_size - num_fg - 1 are
//     background windows, the rest foreground, each chosen as set[rng() mod |set|], then
//     mirrored when mirror and rng() % 2 == 1. The image is decoded as colour (grey when its
//     header says 1 channel). Without context_pad and in "warp" mode the window is resized
//     (bilinear) to crop_size x crop_size. Otherwise it is first grown about its centre by
//     crop_size / (crop_size - 2 * context_pad) (and made square in "square" mode), clipped
//     to the image, and the clipped part is resized to its share of the crop, placed at the
//     offset the clipped-away part would have taken (mirrored with the image); the rest of
//     the crop is 0. Each pixel written is (x - mean) * scale, the mean file being indexed
//     at the centred crop offset ((mean_width - crop_size) / 2) plus the padding. Label =
//     the window's class (0 for background). Exactly Caffe's window_data_layer arithmetic
//     (float); only the random generator differs.
//   backward: nothing
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crema/layer.hpp"
#include "crema/prefetch.hpp"

namespace crema {

class WindowDataLayer : public Layer {
 public:
  struct Window {
    int image = 0;
    int label = 0;
    float overlap = 0.f;
    int x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  };

  explicit WindowDataLayer(const pb::LayerParameter& param);
  ~WindowDataLayer() override;
  const char* type() const override { return "WindowData"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override {}
  int ExactNumBottomBlobs() const override { return 0; }
  int ExactNumTopBlobs() const override { return 2; }

  void SeekBatch(int64_t index) override;
  const std::vector<Window>& fg_windows() const { return fg_windows_; }
  const std::vector<Window>& bg_windows() const { return bg_windows_; }
  int num_fg() const { return num_fg_; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {}

 private:
  struct Image {
    std::string path;
    int channels = 0, height = 0, width = 0;
    std::string encoded;  // the file's bytes, with cache_images
  };

  bool LoadBatch(PrefetchBatch* batch, int64_t index);

  std::vector<Image> images_;
  std::vector<Window> fg_windows_, bg_windows_;
  int batch_size_ = 0;
  int channels_ = 0;
  int crop_size_ = 0;
  int context_pad_ = 0;
  bool square_ = false;
  bool mirror_ = false;
  bool cache_images_ = false;
  float scale_ = 1.f;
  int num_fg_ = 0;
  std::vector<float> mean_;  // mean file, [C, mean_height, mean_width]
  int mean_height_ = 0, mean_width_ = 0;
  std::vector<float> mean_values_;  // one per channel
  uint64_t seed_stream_ = 0;
  BatchPrefetcher prefetcher_;

#ifdef CREMA_WITH_CUDA
 public:
  // GPU mode: cropping and transforms run on the host (producer thread); the prefetcher copies
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
