#include "layers/window_data.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>

#include "crema.pb.h"
#include "crema/data_transformer.hpp"
#include "crema/io.hpp"
#include "crema/layer_registry.hpp"

namespace crema {

WindowDataLayer::WindowDataLayer(const pb::LayerParameter& param) : Layer(param) {}

WindowDataLayer::~WindowDataLayer() {
  prefetcher_.Stop();
}

void WindowDataLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  prefetcher_.Stop();
  const pb::WindowDataParameter& param = layer_param_->window_data_param();
  const pb::TransformationParameter& transform = layer_param_->transform_param();
  const std::string& source = param.source();
  LAYER_REQUIRE(!source.empty(), "window_data_param.source is not set (an R-CNN window file)");
  LAYER_REQUIRE(param.batch_size() > 0 && param.batch_size() <= (1u << 30),
                "window_data_param.batch_size must be positive, got " << param.batch_size());
  LAYER_REQUIRE(transform.crop_size() > 0,
                "transform_param.crop_size must be positive: it is the size windows are "
                "warped to");
  LAYER_REQUIRE(
      param.crop_mode() == "warp" || param.crop_mode() == "square",
      "window_data_param.crop_mode must be 'warp' or 'square', got '" << param.crop_mode() << "'");
  LAYER_REQUIRE(param.fg_fraction() >= 0.f && param.fg_fraction() <= 1.f,
                "window_data_param.fg_fraction must be in [0, 1], got " << param.fg_fraction());
  LAYER_REQUIRE(2 * param.context_pad() < transform.crop_size(),
                "window_data_param.context_pad (" << param.context_pad()
                                                  << ") must be less than half of crop_size ("
                                                  << transform.crop_size() << ")");
  LAYER_REQUIRE(!(transform.has_mean_file() && transform.mean_value_size() > 0),
                "transform_param: cannot specify mean_file and mean_value at the same time");
  const pb::DataParameter& data_param = layer_param_->data_param();
  LAYER_REQUIRE(data_param.prefetch() >= 1 && data_param.prefetch() <= 1024,
                "data_param.prefetch must be between 1 and 1024, got " << data_param.prefetch());
  batch_size_ = static_cast<int>(param.batch_size());
  crop_size_ = static_cast<int>(transform.crop_size());
  context_pad_ = static_cast<int>(param.context_pad());
  square_ = param.crop_mode() == "square";
  mirror_ = transform.mirror();
  cache_images_ = param.cache_images();
  scale_ = param.has_scale() ? param.scale() : transform.scale();

  // The window file.
  std::ifstream in(source);
  LAYER_REQUIRE(in.is_open(), "cannot open the window file '" << source << "'");
  images_.clear();
  fg_windows_.clear();
  bg_windows_.clear();
  std::map<int, int> per_class;
  std::string hash;
  int image_index = 0;
  LAYER_REQUIRE(static_cast<bool>(in >> hash >> image_index),
                "the window file '" << source << "' is empty");
  do {
    const int position = static_cast<int>(images_.size());
    LAYER_REQUIRE(hash == "#", "window file '" << source << "': expected '# <index>' before image "
                                               << position << ", got '" << hash << "'");
    Image image;
    int num_windows = 0;
    LAYER_REQUIRE(static_cast<bool>(in >> image.path >> image.channels >> image.height >>
                                    image.width >> num_windows),
                  "window file '" << source << "': image #" << image_index
                                  << " needs 'path channels height width count'");
    image.path = param.root_folder() + image.path;
    LAYER_REQUIRE(image.channels == 1 || image.channels == 3,
                  "window file '" << source << "': image '" << image.path << "' has "
                                  << image.channels << " channels; 1 or 3 expected");
    if (position == 0) channels_ = image.channels;
    LAYER_REQUIRE(image.channels == channels_,
                  "window file '" << source << "': image '" << image.path << "' has "
                                  << image.channels << " channels but the first has " << channels_);
    LAYER_REQUIRE(num_windows >= 0, "window file '" << source << "': image '" << image.path
                                                    << "' has a negative window count");
    if (cache_images_) {
      std::ifstream file(image.path, std::ios::binary);
      LAYER_REQUIRE(file.good(), "image file '" << image.path << "' (window file '" << source
                                                << "') does not exist or cannot be read");
      image.encoded.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    }
    for (int i = 0; i < num_windows; ++i) {
      Window window;
      window.image = position;
      LAYER_REQUIRE(static_cast<bool>(in >> window.label >> window.overlap >> window.x1 >>
                                      window.y1 >> window.x2 >> window.y2),
                    "window file '" << source << "': window " << i << " of image '" << image.path
                                    << "' needs 'class overlap x1 y1 x2 y2'");
      if (window.overlap >= param.fg_threshold()) {
        LAYER_REQUIRE(window.label > 0, "window file '" << source << "': foreground window " << i
                                                        << " of image '" << image.path
                                                        << "' has class " << window.label
                                                        << "; foreground classes are > 0");
        fg_windows_.push_back(window);
        ++per_class[window.label];
      } else if (window.overlap < param.bg_threshold()) {
        window.label = 0;
        window.overlap = 0.f;
        bg_windows_.push_back(window);
        ++per_class[0];
      }
    }
    images_.push_back(std::move(image));
  } while (in >> hash >> image_index);
  LAYER_REQUIRE(in.eof(), "window file '" << source << "': unreadable text after image "
                                          << images_.size() - 1);

  num_fg_ = static_cast<int>(static_cast<float>(batch_size_) * param.fg_fraction());
  LAYER_REQUIRE(num_fg_ == 0 || !fg_windows_.empty(),
                "the window file '"
                    << source << "' has no foreground window (overlap >= " << param.fg_threshold()
                    << ") but fg_fraction asks for " << num_fg_ << " per batch");
  LAYER_REQUIRE(num_fg_ == batch_size_ || !bg_windows_.empty(),
                "the window file '" << source << "' has no background window (overlap < "
                                    << param.bg_threshold() << ") but fg_fraction asks for "
                                    << batch_size_ - num_fg_ << " per batch");
  LOG(INFO) << error_prefix() << images_.size() << " images, " << fg_windows_.size()
            << " foreground and " << bg_windows_.size() << " background windows";
  for (const auto& [label, count] : per_class)
    VLOG(1) << error_prefix() << "class " << label << ": " << count << " windows";

  // Mean.
  mean_.clear();
  mean_values_.clear();
  if (transform.has_mean_file()) {
    pb::BlobProto proto;
    Blob mean;
    try {
      ReadProtoFromBinaryFile(transform.mean_file(), &proto);
      mean.FromProto(proto);
    } catch (const Error& e) {
      LAYER_THROW("mean file: " << e.what());
    }
    const int axes = mean.num_axes();
    LAYER_REQUIRE(axes >= 3 && mean.count() == mean.count(axes - 3) &&
                      mean.shape(axes - 3) == channels_ && mean.shape(-2) >= crop_size_ &&
                      mean.shape(-1) >= crop_size_,
                  "mean file '" << transform.mean_file() << "' has shape " << mean.shape_string()
                                << "; expected " << channels_ << " channels of at least "
                                << crop_size_ << " x " << crop_size_);
    mean_height_ = mean.shape(-2);
    mean_width_ = mean.shape(-1);
    mean_.assign(mean.cpu_data(), mean.cpu_data() + mean.count());
  } else if (transform.mean_value_size() > 0) {
    LAYER_REQUIRE(transform.mean_value_size() == 1 || transform.mean_value_size() == channels_,
                  "give 1 mean_value or one per channel (" << channels_ << "), got "
                                                           << transform.mean_value_size());
    for (int c = 0; c < channels_; ++c)
      mean_values_.push_back(transform.mean_value(transform.mean_value_size() == 1 ? 0 : c));
  }

  const std::vector<int> shape{batch_size_, channels_, crop_size_, crop_size_};
  LAYER_REQUIRE(
      static_cast<int64_t>(batch_size_) * channels_ * crop_size_ * crop_size_ <= INT32_MAX,
      "a batch of " << shape_string(shape) << " is too large");
  top[0]->Reshape(shape);
  top[1]->Reshape(std::vector<int>{batch_size_});
  const int rank = phase_ == Phase::TRAIN ? Context::solver_rank() : 0;
  seed_stream_ =
      StableHash("WindowData|" + name() + "|" + std::to_string(static_cast<int>(phase_)) + "|" +
                 std::to_string(rank) + "|" + source);
  // Its own seed: Caffe's WindowData takes one when it mirrors or crops, and crop_size is
  // required here.
  TakeCaffeDataLayerSeeds(DataTransformer::NeedsRandom(transform, phase_), 1,
                          /*prefetching=*/true);
  prefetcher_.Init(
      static_cast<int>(data_param.prefetch()), shape, {batch_size_},
      [this](PrefetchBatch* batch, int64_t index) { return LoadBatch(batch, index); },
      error_prefix());
  // Data-parallel training: each solver reads its own share of the batches.
  if (phase_ == Phase::TRAIN) prefetcher_.SetShard(Context::solver_rank(), Context::solver_count());
}

bool WindowDataLayer::LoadBatch(PrefetchBatch* batch, int64_t index) {
  std::mt19937 rng(static_cast<uint32_t>(Context::derive_seed(seed_stream_, index)));
  float* data = batch->data.mutable_cpu_data();
  float* labels = batch->label.mutable_cpu_data();
  std::fill_n(data, batch->data.count(), 0.f);
  const int item_count = channels_ * crop_size_ * crop_size_;
  const int mean_off = mean_.empty() ? 0 : (mean_width_ - crop_size_) / 2;
  const int counts[2] = {batch_size_ - num_fg_, num_fg_};
  int item = 0;
  for (int is_fg = 0; is_fg < 2; ++is_fg) {
    const std::vector<Window>& set = is_fg ? fg_windows_ : bg_windows_;
    for (int n = 0; n < counts[is_fg]; ++n, ++item) {
      if (prefetcher_.stopping()) return false;
      const uint32_t pick = rng();
      const Window& window = set[pick % set.size()];
      const bool do_mirror = mirror_ && (rng() % 2) != 0;
      const Image& image = images_[window.image];
      const int flag = channels_ == 3 ? cv::IMREAD_COLOR : cv::IMREAD_GRAYSCALE;
      cv::Mat img;
      try {
        if (cache_images_) {
          const cv::Mat bytes(1, static_cast<int>(image.encoded.size()), CV_8U,
                              const_cast<char*>(image.encoded.data()));
          img = cv::imdecode(bytes, flag);
        } else {
          img = cv::imread(image.path, flag);
        }
      } catch (const cv::Exception& e) {
        LAYER_THROW("could not decode image '" << image.path << "': " << e.what());
      }
      if (img.empty()) {
        std::ifstream probe(image.path);
        if (!cache_images_ && !probe.good())
          LAYER_THROW("image file '" << image.path << "' does not exist or cannot be read");
        LAYER_THROW("image file '" << image.path
                                   << "' could not be decoded (corrupt or not an image)");
      }

      int x1 = window.x1, y1 = window.y1, x2 = window.x2, y2 = window.y2;
      int pad_w = 0, pad_h = 0;
      cv::Size size(crop_size_, crop_size_);
      if (context_pad_ > 0 || square_) {
        // Grow the window so that, once warped, context_pad pixels surround it.
        const float grow =
            static_cast<float>(crop_size_) / static_cast<float>(crop_size_ - 2 * context_pad_);
        float half_h = static_cast<float>((y2 - y1 + 1) / 2.0);
        float half_w = static_cast<float>((x2 - x1 + 1) / 2.0);
        const float cx = static_cast<float>(x1) + half_w;
        const float cy = static_cast<float>(y1) + half_h;
        if (square_) half_h = half_w = std::max(half_h, half_w);
        x1 = static_cast<int>(std::round(cx - half_w * grow));
        x2 = static_cast<int>(std::round(cx + half_w * grow));
        y1 = static_cast<int>(std::round(cy - half_h * grow));
        y2 = static_cast<int>(std::round(cy + half_h * grow));
        // Clip to the image; remember how much fell outside.
        const int full_h = y2 - y1 + 1, full_w = x2 - x1 + 1;
        int out_left = std::max(0, -x1), out_top = std::max(0, -y1);
        int out_right = std::max(0, x2 - img.cols + 1), out_bottom = std::max(0, y2 - img.rows + 1);
        x1 += out_left;
        x2 -= out_right;
        y1 += out_top;
        y2 -= out_bottom;
        LAYER_REQUIRE(x1 <= x2 && y1 <= y2,
                      "window (" << window.x1 << ", " << window.y1 << ", " << window.x2 << ", "
                                 << window.y2 << ") lies outside image '" << image.path << "' ("
                                 << img.cols << " x " << img.rows << ")");
        const float sx = static_cast<float>(crop_size_) / static_cast<float>(full_w);
        const float sy = static_cast<float>(crop_size_) / static_cast<float>(full_h);
        size.width = static_cast<int>(std::round(static_cast<float>(x2 - x1 + 1) * sx));
        size.height = static_cast<int>(std::round(static_cast<float>(y2 - y1 + 1) * sy));
        out_left = static_cast<int>(std::round(static_cast<float>(out_left) * sx));
        out_right = static_cast<int>(std::round(static_cast<float>(out_right) * sx));
        out_top = static_cast<int>(std::round(static_cast<float>(out_top) * sy));
        out_bottom = static_cast<int>(std::round(static_cast<float>(out_bottom) * sy));
        pad_h = out_top;
        pad_w = do_mirror ? out_right : out_left;
        // Rounding may overshoot the crop by a pixel.
        if (pad_h + size.height > crop_size_) size.height = crop_size_ - pad_h;
        if (pad_w + size.width > crop_size_) size.width = crop_size_ - pad_w;
        LAYER_REQUIRE(size.width > 0 && size.height > 0,
                      "window (" << window.x1 << ", " << window.y1 << ", " << window.x2 << ", "
                                 << window.y2 << ") of image '" << image.path
                                 << "' warps to an empty region");
      } else {
        LAYER_REQUIRE(x1 >= 0 && y1 >= 0 && x1 <= x2 && y1 <= y2 && x2 < img.cols && y2 < img.rows,
                      "window (" << x1 << ", " << y1 << ", " << x2 << ", " << y2
                                 << ") does not fit in image '" << image.path << "' (" << img.cols
                                 << " x " << img.rows
                                 << "); set context_pad or crop_mode: square to clip windows");
      }
      cv::Mat warped;
      cv::resize(img(cv::Rect(x1, y1, x2 - x1 + 1, y2 - y1 + 1)), warped, size, 0, 0,
                 cv::INTER_LINEAR);
      if (do_mirror) cv::flip(warped, warped, 1);

      float* out = data + static_cast<size_t>(item) * item_count;
      const int channels = warped.channels();
      for (int h = 0; h < warped.rows; ++h) {
        const uint8_t* row = warped.ptr<uint8_t>(h);
        for (int w = 0; w < warped.cols; ++w) {
          for (int c = 0; c < channels; ++c) {
            const float pixel = static_cast<float>(row[w * channels + c]);
            const int oh = h + pad_h, ow = w + pad_w;
            float value;
            if (!mean_.empty()) {
              value = (pixel -
                       mean_[(static_cast<size_t>(c) * mean_height_ + oh + mean_off) * mean_width_ +
                             ow + mean_off]) *
                      scale_;
            } else if (!mean_values_.empty()) {
              value = (pixel - mean_values_[c]) * scale_;
            } else {
              value = pixel * scale_;
            }
            out[(c * crop_size_ + oh) * crop_size_ + ow] = value;
          }
        }
      }
      labels[item] = static_cast<float>(window.label);
    }
  }
  return true;
}

void WindowDataLayer::SeekBatch(int64_t index) {
  LAYER_REQUIRE(index >= 0, "SeekBatch: batch index must not be negative, got " << index);
  prefetcher_.Seek(index);
}

void WindowDataLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  BatchPrefetcher::AliasTops(prefetcher_.Next(), top);
}

REGISTER_LAYER_CLASS(WindowData);

}  // namespace crema
