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
  const MnistDataset data = ReadMnist(images_path, labels_path);
  const uint32_t count = data.count;
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
    const int label = data.label(i);
    const std::string folder = prefix + "/" + std::to_string(label);
    if (!made[label]) {
      MakeDirectories(base + "/" + folder);
      made[label] = true;
    }
    char name[32];
    std::snprintf(name, sizeof(name), "%05lld.png", static_cast<long long>(i));
    const std::string relative = folder + "/" + name;
    const cv::Mat image(static_cast<int>(data.rows), static_cast<int>(data.cols), CV_8UC1,
                        const_cast<char*>(data.image(i)));
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
  LOG(INFO) << "Wrote " << n << " PNGs of " << data.rows << " x " << data.cols << " under " << base
            << "/" << prefix << " and the list " << list_path;
  return n;
}

}  // namespace crema
