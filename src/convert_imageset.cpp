// ConvertImageset and ReadImageList: see include/crema/image_tools.hpp.
#include <sys/stat.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <random>
#include <sstream>

#include "crema.pb.h"
#include "crema/db.hpp"
#include "crema/image_tools.hpp"

namespace crema {

namespace {

bool IsDirectory(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

bool IsRegularFile(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The extension after the last '.', lower-cased ("" if none).
std::string Extension(const std::string& path) {
  const size_t dot = path.rfind('.');
  const size_t slash = path.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  return Lower(path.substr(dot + 1));
}

bool ExtensionMatches(const std::string& path, const std::string& encoding) {
  const std::string ext = Extension(path);
  const std::string enc = Lower(encoding);
  return ext == enc || (enc == "jpg" && ext == "jpeg") || (enc == "jpeg" && ext == "jpg");
}

bool ReadWholeFile(const std::string& path, std::string* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream content;
  content << in.rdbuf();
  *bytes = content.str();
  return static_cast<bool>(in) || in.eof();
}

// Planar copy: data[(c * H + h) * W + w] = pixel (h, w), channel c.
void MatToDatumPixels(const cv::Mat& image, pb::Datum* datum) {
  const int channels = image.channels(), height = image.rows, width = image.cols;
  datum->set_channels(channels);
  datum->set_height(height);
  datum->set_width(width);
  datum->clear_float_data();
  datum->set_encoded(false);
  std::string* data = datum->mutable_data();
  data->resize(static_cast<size_t>(channels) * height * width);
  char* out = &(*data)[0];
  const size_t plane = static_cast<size_t>(height) * width;
  for (int h = 0; h < height; ++h) {
    const uint8_t* row = image.ptr<uint8_t>(h);
    for (int w = 0; w < width; ++w)
      for (int c = 0; c < channels; ++c)
        out[c * plane + static_cast<size_t>(h) * width + w] =
            static_cast<char>(row[w * channels + c]);
  }
}

std::string FormatSeconds(double seconds) {
  std::ostringstream text;
  if (seconds < 60) {
    text << std::fixed << std::setprecision(1) << seconds << " s";
  } else {
    const long total = static_cast<long>(seconds + 0.5);
    if (total >= 3600) text << total / 3600 << " h ";
    text << (total % 3600) / 60 << " min " << total % 60 << " s";
  }
  return text.str();
}

std::string ShapeText(int c, int h, int w) {
  std::ostringstream text;
  text << c << " x " << h << " x " << w;
  return text.str();
}

}  // namespace

std::vector<ImageListEntry> ReadImageList(const std::string& list_path) {
  CREMA_REQUIRE(IsRegularFile(list_path),
                "image list '" << list_path << "' does not exist or is not a file");
  std::ifstream in(list_path);
  CREMA_REQUIRE(in, "cannot open image list '" << list_path << "': " << std::strerror(errno));
  std::vector<ImageListEntry> entries;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    // Trailing whitespace (including the '\r' of a Windows line end) is not part of anything.
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t begin = 0;
    while (begin < line.size() && std::isspace(static_cast<unsigned char>(line[begin]))) ++begin;
    if (begin == line.size()) continue;
    const size_t separator = line.find_last_of(" \t");
    CREMA_REQUIRE(
        separator != std::string::npos && separator > begin,
        list_path << ":" << line_number << ": expected \"path label\", got \"" << line << "\"");
    const std::string label_text = line.substr(separator + 1);
    char* end = nullptr;
    errno = 0;
    const long label = std::strtol(label_text.c_str(), &end, 10);
    CREMA_REQUIRE(*end == '\0' && errno == 0 && label >= INT32_MIN && label <= INT32_MAX,
                  list_path << ":" << line_number << ": the label \"" << label_text
                            << "\" is not an integer (a line is \"path label\", the label "
                               "being the last word)");
    size_t path_end = separator;
    while (path_end > begin && std::isspace(static_cast<unsigned char>(line[path_end - 1])))
      --path_end;
    ImageListEntry entry;
    entry.path = line.substr(begin, path_end - begin);
    entry.label = static_cast<int>(label);
    entries.push_back(std::move(entry));
  }
  return entries;
}

ConvertImagesetResult ConvertImageset(const std::string& root, const std::string& list_path,
                                      const std::string& db_path,
                                      const ConvertImagesetOptions& options) {
  std::string prefix;
  if (!root.empty()) {
    CREMA_REQUIRE(IsDirectory(root),
                  "image root folder '" << root << "' does not exist or is not a directory");
    prefix = root.back() == '/' ? root : root + "/";
  }
  CREMA_REQUIRE(options.resize_width >= 0 && options.resize_height >= 0,
                "resize_width and resize_height cannot be negative (got "
                    << options.resize_width << " and " << options.resize_height << ")");
  CREMA_REQUIRE((options.resize_width > 0) == (options.resize_height > 0),
                "give both resize_width and resize_height, or neither (got "
                    << options.resize_width << " and " << options.resize_height << ")");
  const bool resize = options.resize_width > 0;
  const bool encoded = options.encoded || !options.encode_type.empty();
  if (!options.encode_type.empty()) {
    bool supported = false;
    try {
      supported = cv::haveImageWriter("." + options.encode_type);
    } catch (const cv::Exception&) {
      supported = false;
    }
    CREMA_REQUIRE(supported, "encode_type '" << options.encode_type
                                             << "' is not an image format OpenCV can write "
                                                "(try png or jpg)");
    if (!options.encoded) LOG(INFO) << "encode_type given: storing encoded images.";
  }

  std::vector<ImageListEntry> entries = ReadImageList(list_path);
  CREMA_REQUIRE(!entries.empty(), "image list '" << list_path
                                                 << "' has no entries (expected lines of "
                                                    "\"relative/path label\")");
  if (options.shuffle) {
    // Fisher-Yates with our own index draws, so the order depends on the seed only.
    std::mt19937_64 rng(options.seed);
    for (size_t i = entries.size() - 1; i > 0; --i) {
      const size_t j = static_cast<size_t>(rng() % (i + 1));
      std::swap(entries[i], entries[j]);
    }
    LOG(INFO) << "Shuffled the list (seed " << options.seed << ")";
  }
  LOG(INFO) << "A total of " << entries.size() << " images in " << list_path;

  ConvertImagesetResult result;
  result.entries = static_cast<int64_t>(entries.size());
  const auto start = std::chrono::steady_clock::now();
  LMDBWriter writer(db_path, /*commit_every=*/1000);
  const int read_flag = options.gray ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR;
  pb::Datum datum;
  std::string value;
  bool have_first = false;
  int first_c = 0, first_h = 0, first_w = 0;
  std::string first_path;
  bool warned_guess = false;

  for (size_t line_id = 0; line_id < entries.size(); ++line_id) {
    const ImageListEntry& entry = entries[line_id];
    const std::string file = prefix + entry.path;
    cv::Mat image;
    if (!IsRegularFile(file)) {
      LOG(WARNING) << "Skipping " << entry.path << ": " << file << " does not exist";
    } else {
      try {
        image = cv::imread(file, read_flag);
      } catch (const cv::Exception& e) {
        image.release();
      }
      if (image.empty() || image.depth() != CV_8U) {
        LOG(WARNING) << "Skipping " << entry.path << ": " << file
                     << " is not an image OpenCV can decode (corrupt or unsupported file)";
        image.release();
      }
    }
    if (!image.empty()) {
      if (resize) {
        cv::Mat resized;
        cv::resize(image, resized, cv::Size(options.resize_width, options.resize_height));
        image = resized;
      }
      if (options.check_size) {
        if (!have_first) {
          have_first = true;
          first_c = image.channels();
          first_h = image.rows;
          first_w = image.cols;
          first_path = entry.path;
        } else if (image.channels() != first_c || image.rows != first_h || image.cols != first_w) {
          CREMA_THROW("check_size: '"
                      << entry.path << "' (line " << line_id + 1 << " of the list as processed) is "
                      << ShapeText(image.channels(), image.rows, image.cols)
                      << " but the first image '" << first_path << "' is "
                      << ShapeText(first_c, first_h, first_w) << " (channels x height x width)");
        }
      }
      datum.Clear();
      datum.set_label(entry.label);
      if (encoded) {
        std::string encoding = options.encode_type;
        if (encoding.empty()) {
          encoding = Extension(entry.path);
          if (encoding.empty()) {
            if (!warned_guess)
              LOG(WARNING) << "Cannot guess the encoding of '" << entry.path
                           << "' from its name: encoding it (and others like it) as png";
            warned_guess = true;
            encoding = "png";
          }
        }
        // The file's own bytes when it already is what we would write: same format, no
        // resize (Caffe's rule), and - stricter than Caffe, which would store a colour file
        // as is under --gray - decoding it as stored gives the channels asked for.
        // Otherwise the decoded (and resized) image is re-encoded.
        std::string bytes;
        bool use_file =
            !resize && ExtensionMatches(entry.path, encoding) && ReadWholeFile(file, &bytes);
        if (use_file) {
          cv::Mat native;
          try {
            const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8U, &bytes[0]);
            native = cv::imdecode(raw, cv::IMREAD_UNCHANGED);
          } catch (const cv::Exception&) {
            native.release();
          }
          use_file =
              !native.empty() && native.depth() == CV_8U && native.channels() == image.channels();
        }
        if (use_file) {
          datum.set_data(bytes);
        } else {
          std::vector<uint8_t> buffer;
          bool ok = false;
          try {
            ok = cv::imencode("." + encoding, image, buffer);
          } catch (const cv::Exception&) {
            ok = false;
          }
          CREMA_REQUIRE(ok, "cannot encode '" << entry.path << "' as '" << encoding
                                              << "' (give --encode_type png or jpg)");
          datum.set_data(buffer.data(), buffer.size());
        }
        datum.set_encoded(true);
        // Caffe leaves the size fields unset for encoded datums; so do we.
      } else {
        MatToDatumPixels(image, &datum);
      }
      datum.SerializeToString(&value);
      char number[32];
      std::snprintf(number, sizeof(number), "%08d", static_cast<int>(line_id));
      writer.Put(std::string(number) + "_" + entry.path, value);
      ++result.written;
    } else {
      ++result.skipped;
      result.skipped_files.push_back(entry.path);
    }

    const size_t done = line_id + 1;
    if (options.progress_every > 0 && done % options.progress_every == 0 && done < entries.size()) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double rate = elapsed > 0 ? done / elapsed : 0;
      const double eta = rate > 0 ? (entries.size() - done) / rate : 0;
      LOG(INFO) << "Processed " << done << " / " << entries.size() << " images (" << result.skipped
                << " skipped), " << std::fixed << std::setprecision(1) << rate << " images/s, ETA "
                << FormatSeconds(eta);
    }
  }
  writer.Close();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  LOG(INFO) << "Wrote " << result.written << " images to " << db_path << ", skipped "
            << result.skipped << ", in " << FormatSeconds(result.seconds);
  return result;
}

}  // namespace crema
