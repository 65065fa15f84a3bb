#include "layers/image_data.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <random>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"

namespace crema {

namespace {
// Sub-streams of the layer's seed stream.
constexpr uint64_t kShuffleStream = 0x5348554646ull;  // "SHUFF"
constexpr uint64_t kSkipStream = 0x534b4950ull;       // "SKIP"
}  // namespace

ImageDataLayer::ImageDataLayer(const pb::LayerParameter& param) : Layer(param) {}

ImageDataLayer::~ImageDataLayer() {
  prefetcher_.Stop();
}

void ImageDataLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  prefetcher_.Stop();
  const pb::ImageDataParameter& param = layer_param_->image_data_param();
  const std::string& source = param.source();
  LAYER_REQUIRE(!source.empty(),
                "image_data_param.source is not set (a text file of 'path label' lines)");
  LAYER_REQUIRE(param.batch_size() > 0,
                "image_data_param.batch_size must be positive, got " << param.batch_size());
  LAYER_REQUIRE(param.batch_size() <= (1u << 30),
                "image_data_param.batch_size is too large: " << param.batch_size());
  LAYER_REQUIRE((param.new_height() == 0) == (param.new_width() == 0),
                "image_data_param.new_height and new_width must be set together (got "
                    << param.new_height() << " x " << param.new_width() << ")");
  LAYER_REQUIRE(param.new_height() <= 65536 && param.new_width() <= 65536,
                "image_data_param.new_height/new_width are too large: "
                    << param.new_height() << " x " << param.new_width());
  const pb::DataParameter& data_param = layer_param_->data_param();
  LAYER_REQUIRE(data_param.prefetch() >= 1 && data_param.prefetch() <= 1024,
                "data_param.prefetch must be between 1 and 1024, got " << data_param.prefetch());
  batch_size_ = static_cast<int>(param.batch_size());
  new_height_ = static_cast<int>(param.new_height());
  new_width_ = static_cast<int>(param.new_width());
  is_color_ = param.is_color();
  shuffle_ = param.shuffle();

  // The list.
  std::ifstream in(source);
  LAYER_REQUIRE(in.is_open(),
                "cannot open the image list image_data_param.source = '" << source << "'");
  lines_.clear();
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const size_t space = line.find_last_of(' ');
    if (space == std::string::npos) {
      lines_.emplace_back(param.root_folder() + line, 0);
      continue;
    }
    const std::string label_text = line.substr(space + 1);
    char* end = nullptr;
    errno = 0;
    const long label = std::strtol(label_text.c_str(), &end, 10);
    LAYER_REQUIRE(!label_text.empty() && *end == '\0' && errno == 0 && label >= INT32_MIN &&
                      label <= INT32_MAX,
                  source << ":" << line_number << ": the label '" << label_text
                         << "' is not an integer (lines are 'path label')");
    lines_.emplace_back(param.root_folder() + line.substr(0, space), static_cast<int>(label));
  }
  LAYER_REQUIRE(!lines_.empty(), "the image list '" << source << "' is empty");
  LAYER_REQUIRE(lines_.size() < (1ull << 32), "the image list '" << source << "' is too long");

  const int rank = phase_ == Phase::TRAIN ? Context::solver_rank() : 0;
  seed_stream_ = StableHash("ImageData|" + name() + "|" + std::to_string(static_cast<int>(phase_)) +
                            "|" + std::to_string(rank) + "|" + source);
  skip_ = 0;
  if (param.rand_skip() > 0) {
    skip_ = Context::derive_seed(seed_stream_ ^ kSkipStream, 0) % param.rand_skip();
    LAYER_REQUIRE(skip_ < lines_.size(), "rand_skip drew " << skip_ << " but the list '" << source
                                                           << "' has only " << lines_.size()
                                                           << " entries");
    LOG(INFO) << error_prefix() << "skipping the first " << skip_ << " entries";
  }

  try {
    transformer_ = std::make_unique<DataTransformer>(layer_param_->transform_param(), phase_);
  } catch (const Error& e) {
    LAYER_THROW(e.what());
  }
  const int own_seeds = (shuffle_ ? 1 : 0) + (param.rand_skip() > 0 ? 1 : 0);
  const uint32_t transformer_seed =
      TakeCaffeDataLayerSeeds(transformer_->NeedsRandom(), own_seeds, /*prefetching=*/true);
  transform_random_.Init(transformer_seed + static_cast<uint32_t>(rank),
                         int64_t{batch_size_} * transformer_->DrawsPerItem());
  datum_ = std::make_unique<pb::Datum>();

  // Shapes from the first image delivered.
  cached_epoch_ = -1;
  const std::string& first = lines_[LineOfItem(0)].first;
  pb::Datum datum;
  ReadImage(first, &datum);
  std::vector<int> shape;
  try {
    shape = transformer_->InferBlobShape(datum);
  } catch (const Error& e) {
    LAYER_THROW("image '" << first << "': " << e.what());
  }
  shape[0] = batch_size_;
  const int64_t count = static_cast<int64_t>(shape[1]) * shape[2] * shape[3] * batch_size_;
  LAYER_REQUIRE(count <= INT32_MAX, "a batch of " << shape_string(shape) << " is too large");
  top[0]->Reshape(shape);
  top[1]->Reshape(std::vector<int>{batch_size_});
  LOG(INFO) << error_prefix() << "output data size: " << top[0]->shape_string() << " from "
            << source << " (" << lines_.size() << " images" << (shuffle_ ? ", shuffled" : "")
            << ")";
  prefetcher_.Init(
      static_cast<int>(data_param.prefetch()), shape, {batch_size_},
      [this](PrefetchBatch* batch, int64_t index) { return LoadBatch(batch, index); },
      error_prefix());
  // Data-parallel training: each solver reads its own share of the batches.
  if (phase_ == Phase::TRAIN) prefetcher_.SetShard(Context::solver_rank(), Context::solver_count());
}

void ImageDataLayer::ComputeOrder(int64_t epoch, std::vector<uint32_t>* order) const {
  order->resize(lines_.size());
  for (size_t i = 0; i < order->size(); ++i) (*order)[i] = static_cast<uint32_t>(i);
  if (!shuffle_) return;
  std::mt19937 rng(
      static_cast<uint32_t>(Context::derive_seed(seed_stream_ ^ kShuffleStream, epoch)));
  StableShuffle(order, rng);
}

size_t ImageDataLayer::LineOfItem(int64_t position) const {
  const uint64_t p = skip_ + static_cast<uint64_t>(position);
  const uint64_t n = lines_.size();
  if (!shuffle_) return p % n;
  std::vector<uint32_t> order;
  ComputeOrder(static_cast<int64_t>(p / n), &order);
  return order[p % n];
}

void ImageDataLayer::ReadImage(const std::string& path, pb::Datum* datum) const {
  cv::Mat image;
  try {
    image = cv::imread(path, is_color_ ? cv::IMREAD_COLOR : cv::IMREAD_GRAYSCALE);
  } catch (const cv::Exception& e) {
    LAYER_THROW("could not decode image '" << path << "': " << e.what());
  }
  if (image.empty()) {
    std::ifstream probe(path);
    if (!probe.good()) LAYER_THROW("image file '" << path << "' does not exist or cannot be read");
    LAYER_THROW("image file '" << path << "' could not be decoded (corrupt or not an image)");
  }
  if (new_height_ > 0 && (image.rows != new_height_ || image.cols != new_width_)) {
    cv::Mat resized;
    cv::resize(image, resized, cv::Size(new_width_, new_height_));  // bilinear, as Caffe
    image = resized;
  }
  CHECK_EQ(image.depth(), CV_8U);
  const int channels = image.channels();
  const int height = image.rows, width = image.cols;
  datum->Clear();
  datum->set_channels(channels);
  datum->set_height(height);
  datum->set_width(width);
  std::string* bytes = datum->mutable_data();
  bytes->resize(static_cast<size_t>(channels) * height * width);
  char* out = &(*bytes)[0];
  const size_t plane = static_cast<size_t>(height) * width;
  for (int h = 0; h < height; ++h) {
    const uint8_t* row = image.ptr<uint8_t>(h);
    for (int w = 0; w < width; ++w)
      for (int c = 0; c < channels; ++c)
        out[c * plane + static_cast<size_t>(h) * width + w] =
            static_cast<char>(row[w * channels + c]);
  }
}

bool ImageDataLayer::LoadBatch(PrefetchBatch* batch, int64_t index) {
  std::mt19937& rng = transform_random_.At(index);
  const uint64_t n = lines_.size();
  std::vector<int> item_shape;
  for (int i = 0; i < batch_size_; ++i) {
    if (prefetcher_.stopping()) return false;
    const uint64_t p = skip_ + static_cast<uint64_t>(index) * batch_size_ + i;
    size_t line = p % n;
    if (shuffle_) {
      const int64_t epoch = static_cast<int64_t>(p / n);
      if (epoch != cached_epoch_) {
        ComputeOrder(epoch, &order_);
        cached_epoch_ = epoch;
      }
      line = order_[line];
    }
    const std::string& path = lines_[line].first;
    ReadImage(path, datum_.get());
    if (i == 0) {
      // The batch takes the shape of its first image.
      std::vector<int> shape;
      try {
        shape = transformer_->InferBlobShape(*datum_);
      } catch (const Error& e) {
        LAYER_THROW("image '" << path << "': " << e.what());
      }
      item_shape.assign(shape.begin() + 1, shape.end());
      shape[0] = batch_size_;
      LAYER_REQUIRE(static_cast<int64_t>(shape[1]) * shape[2] * shape[3] * batch_size_ <= INT32_MAX,
                    "a batch of " << shape_string(shape) << " is too large");
      batch->data.Reshape(shape);
    }
    float* out = batch->data.mutable_cpu_data() + static_cast<size_t>(i) * batch->data.count(1);
    try {
      transformer_->Transform(*datum_, out, rng, item_shape);
    } catch (const Error& e) {
      LAYER_THROW("image '" << path << "' (item " << i << " of batch " << index
                            << "): " << e.what());
    }
    batch->label.mutable_cpu_data()[i] = static_cast<float>(lines_[line].second);
  }
  transform_random_.Finished(index);
  return true;
}

void ImageDataLayer::SeekBatch(int64_t index) {
  LAYER_REQUIRE(index >= 0, "SeekBatch: batch index must not be negative, got " << index);
  prefetcher_.Seek(index);
}

void ImageDataLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  BatchPrefetcher::AliasTops(prefetcher_.Next(), top);
}

REGISTER_LAYER_CLASS(ImageData);

}  // namespace crema
