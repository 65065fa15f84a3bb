// MnistToImages: see include/crema/image_tools.hpp.
#include <sys/stat.h>
#include <sys/types.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "crema/image_tools.hpp"
#include "crema/mnist.hpp"

namespace crema {

namespace {

uint32_t BigEndian32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + offset;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// mkdir -p for one path.
void MakeDirectories(const std::string& path) {
  std::string partial;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    partial = path.substr(0, slash);
    if (!partial.empty()) {
      if (::mkdir(partial.c_str(), 0777) != 0 && errno != EEXIST)
        CREMA_THROW("cannot create directory '" << partial << "': " << std::strerror(errno));
    }
    start = slash + 1;
  }
}

}  // namespace

int64_t MnistToImages(const std::string& images_path, const std::string& labels_path,
                      const std::string& out_dir, const std::string& prefix, int64_t limit) {
  CREMA_REQUIRE(
      !prefix.empty() && prefix.find('/') == std::string::npos && prefix != "." && prefix != "..",
      "PREFIX must be a plain folder name such as 'train', got '" << prefix << "'");
  const std::string images = ReadFileMaybeGzip(images_path);
  const std::string labels = ReadFileMaybeGzip(labels_path);
  CREMA_REQUIRE(images.size() >= 16 && BigEndian32(images, 0) == 2051,
                "'" << images_path << "' is not an IDX image file (magic 2051)");
  CREMA_REQUIRE(labels.size() >= 8 && BigEndian32(labels, 0) == 2049,
                "'" << labels_path << "' is not an IDX label file (magic 2049)");
  const uint32_t count = BigEndian32(images, 4);
  const uint32_t rows = BigEndian32(images, 8);
  const uint32_t cols = BigEndian32(images, 12);
  CREMA_REQUIRE(rows > 0 && cols > 0 && rows <= 65536 && cols <= 65536,
                "'" << images_path << "' declares " << rows << " x " << cols << " images");
  const uint64_t pixels = uint64_t{rows} * cols;
  CREMA_REQUIRE(images.size() == 16 + count * pixels,
                "'" << images_path << "' has " << images.size() << " bytes but its header needs "
                    << 16 + count * pixels << " (truncated or corrupt file?)");
  CREMA_REQUIRE(labels.size() == 8 + uint64_t{BigEndian32(labels, 4)},
                "'" << labels_path << "' is truncated or corrupt");
  CREMA_REQUIRE(BigEndian32(labels, 4) == count, "'" << images_path << "' holds " << count
                                                     << " images but '" << labels_path << "' holds "
                                                     << BigEndian32(labels, 4) << " labels");
  const int64_t n = limit > 0 && limit < count ? limit : count;

  const std::string base = out_dir.empty() ? "." : out_dir;
  std::vector<bool> made(256, false);
  const std::string list_path = base + "/" + prefix + ".txt";
  const std::string temp_list = list_path + ".partial";
  MakeDirectories(base + "/" + prefix);
  std::ofstream list(temp_list);
  CREMA_REQUIRE(list, "cannot create '" << temp_list << "': " << std::strerror(errno));
  const std::vector<int> png_params = {cv::IMWRITE_PNG_COMPRESSION, 3};
  for (int64_t i = 0; i < n; ++i) {
    const int label = static_cast<unsigned char>(labels[8 + i]);
    const std::string folder = prefix + "/" + std::to_string(label);
    if (!made[label]) {
      MakeDirectories(base + "/" + folder);
      made[label] = true;
    }
    char name[32];
    std::snprintf(name, sizeof(name), "%05lld.png", static_cast<long long>(i));
    const std::string relative = folder + "/" + name;
    const cv::Mat image(static_cast<int>(rows), static_cast<int>(cols), CV_8UC1,
                        const_cast<char*>(images.data() + 16 + i * pixels));
    bool ok = false;
    try {
      ok = cv::imwrite(base + "/" + relative, image, png_params);
    } catch (const cv::Exception&) {
      ok = false;
    }
    CREMA_REQUIRE(ok, "cannot write '" << base << "/" << relative << "'");
    list << relative << ' ' << label << '\n';
  }
  list.close();
  CREMA_REQUIRE(list, "cannot write '" << temp_list << "'");
  CREMA_REQUIRE(
      std::rename(temp_list.c_str(), list_path.c_str()) == 0,
      "cannot rename '" << temp_list << "' to '" << list_path << "': " << std::strerror(errno));
  LOG(INFO) << "Wrote " << n << " PNGs of " << rows << " x " << cols << " under " << base << "/"
            << prefix << " and the list " << list_path;
  return n;
}

}  // namespace crema
