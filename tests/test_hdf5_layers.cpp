// HDF5Data and HDF5Output layers.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "layers/hdf5_data.hpp"
#include "layers/hdf5_output.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::LayerParam;
using testing::Values;

class HDF5LayersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/crema_hdf5_XXXXXX";
    dir_ = mkdtemp(dir_template);
    Context::set_random_seed(1701);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // data: rows x 2 with values first + 10 * row + column; label: rows with first + row.
  std::string WriteFile(const std::string& name, int rows, float first, bool use_double,
                        bool with_label = true, int label_rows = -1) {
    const std::string path = dir_ + "/" + name;
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(file, 0);
    std::vector<double> data, label;
    for (int r = 0; r < rows; ++r) {
      data.push_back(first + 10 * r);
      data.push_back(first + 10 * r + 1);
    }
    if (label_rows < 0) label_rows = rows;
    for (int r = 0; r < label_rows; ++r) label.push_back(first + r);
    const hsize_t data_dims[2] = {static_cast<hsize_t>(rows), 2};
    const hsize_t label_dims[1] = {static_cast<hsize_t>(label_rows)};
    if (use_double) {
      EXPECT_GE(H5LTmake_dataset_double(file, "data", 2, data_dims, data.data()), 0);
      if (with_label)
        EXPECT_GE(H5LTmake_dataset_double(file, "label", 1, label_dims, label.data()), 0);
    } else {
      std::vector<float> data_f(data.begin(), data.end()), label_f(label.begin(), label.end());
      EXPECT_GE(H5LTmake_dataset_float(file, "data", 2, data_dims, data_f.data()), 0);
      if (with_label)
        EXPECT_GE(H5LTmake_dataset_float(file, "label", 1, label_dims, label_f.data()), 0);
    }
    H5Fclose(file);
    return path;
  }

  std::string WriteList(const std::vector<std::string>& files) {
    const std::string path = dir_ + "/files.txt";
    std::ofstream out(path);
    for (const auto& f : files) out << f << "\n";
    return path;
  }

  static std::string Layer(const std::string& source, const std::string& extra = "") {
    return "name: 'h5' type: 'HDF5Data' top: 'data' top: 'label' hdf5_data_param { source: '" +
           source + "' " + extra + " }";
  }

  std::string dir_;
};

TEST_F(HDF5LayersTest, ReadsFloatAndDoubleFilesInOrder) {
  const std::string list =
      WriteList({WriteFile("a.h5", 3, 100, false), WriteFile("b.h5", 2, 200, true)});
  HDF5DataLayer layer(LayerParam(Layer(list, "batch_size: 2")));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  EXPECT_EQ(data.shape(), (std::vector<int>{2, 2}));
  EXPECT_EQ(label.shape(), (std::vector<int>{2}));
  const std::vector<std::vector<float>> expected_labels = {{100, 101}, {102, 200}, {201, 100}};
  const std::vector<std::vector<float>> expected_data = {
      {100, 101, 110, 111}, {120, 121, 200, 201}, {210, 211, 100, 101}};
  for (int b = 0; b < 3; ++b) {
    layer.Forward({}, {&data, &label});
    EXPECT_EQ(Values(label), expected_labels[b]) << "batch " << b;
    EXPECT_EQ(Values(data), expected_data[b]) << "batch " << b;
  }
}

TEST_F(HDF5LayersTest, ShuffleCoversEveryRowEachEpochAndSeeks) {
  const std::string list =
      WriteList({WriteFile("a.h5", 4, 0, false), WriteFile("b.h5", 3, 100, true)});
  const std::string text = Layer(list, "batch_size: 7 shuffle: true");
  std::vector<std::vector<float>> run;
  {
    HDF5DataLayer layer(LayerParam(text));
    Blob data, label;
    layer.SetUp({}, {&data, &label});
    for (int b = 0; b < 6; ++b) {
      layer.Forward({}, {&data, &label});
      run.push_back(Values(label));
      std::vector<float> sorted = run.back();
      std::sort(sorted.begin(), sorted.end());
      EXPECT_EQ(sorted, (std::vector<float>{0, 1, 2, 3, 100, 101, 102})) << "epoch " << b;
      // data rows travel with their labels
      for (int i = 0; i < 7; ++i)
        EXPECT_EQ(data.cpu_data()[2 * i], 10 * std::fmod(label.cpu_data()[i], 100.f) +
                                              (label.cpu_data()[i] >= 100 ? 100 : 0));
    }
    // Epochs are reshuffled: one of 288 orders each, so two may coincide by chance, but
    // five repeats of the first order would mean the shuffle is not re-drawn.
    EXPECT_TRUE(
        std::any_of(run.begin() + 1, run.end(), [&](const auto& r) { return r != run[0]; }));
  }
  HDF5DataLayer layer(LayerParam(text));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  layer.SeekBatch(2);
  layer.Forward({}, {&data, &label});
  EXPECT_EQ(Values(label), run[2]);
  layer.SeekBatch(0);
  layer.Forward({}, {&data, &label});
  EXPECT_EQ(Values(label), run[0]);
}

TEST_F(HDF5LayersTest, ErrorsNameFileAndDataset) {
  Blob data, label;
  {
    const std::string list =
        WriteList({WriteFile("a.h5", 2, 0, false), WriteFile("nolabel.h5", 2, 0, false, false)});
    HDF5DataLayer layer(LayerParam(Layer(list, "batch_size: 1")));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "nolabel.h5", "'label'", "'h5'");
  }
  {
    const std::string list = WriteList({WriteFile("rows.h5", 3, 0, true, true, 2)});
    HDF5DataLayer layer(LayerParam(Layer(list, "batch_size: 1")));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "rows.h5", "'label'", "2 rows", "3");
  }
  {
    const std::string list = WriteList({dir_ + "/absent.h5"});
    HDF5DataLayer layer(LayerParam(Layer(list, "batch_size: 1")));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "absent.h5");
  }
  {
    HDF5DataLayer layer(LayerParam(Layer(dir_ + "/no_list.txt", "batch_size: 1")));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "no_list.txt");
  }
  {
    const std::string list = WriteList({WriteFile("a.h5", 2, 0, false)});
    HDF5DataLayer layer(LayerParam(Layer(list, "batch_size: 1") + " transform_param { scale: 2 }"));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "transform");
  }
}

TEST_F(HDF5LayersTest, OutputWritesWhatDataReadsBack) {
  const std::string file = dir_ + "/out.h5";
  {
    HDF5OutputLayer out(
        LayerParam("name: 'save' type: 'HDF5Output' bottom: 'data' bottom: 'label' "
                   "hdf5_output_param { file_name: '" +
                   file + "' }"));
    Blob data(std::vector<int>{2, 3}), label(std::vector<int>{2});
    out.SetUp({&data, &label}, {});
    for (int batch = 0; batch < 3; ++batch) {
      for (int i = 0; i < 6; ++i) data.mutable_cpu_data()[i] = batch * 100 + i;
      for (int i = 0; i < 2; ++i) label.mutable_cpu_data()[i] = batch * 10 + i;
      out.Forward({&data, &label}, {});
    }
    EXPECT_EQ(out.rows_written(), 6);
    // Rows of another shape cannot be appended.
    Blob other(std::vector<int>{2, 4});
    EXPECT_ERROR_WITH(out.Forward({&other, &label}, {}), "'data'", "changed shape");
  }
  const std::string list = WriteList({file});
  HDF5DataLayer layer(LayerParam(Layer(list, "batch_size: 6")));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  // As in Caffe, rows are stored with 4 legacy axes.
  EXPECT_EQ(data.shape(), (std::vector<int>{6, 3, 1, 1}));
  EXPECT_EQ(label.shape(), (std::vector<int>{6, 1, 1, 1}));
  layer.Forward({}, {&data, &label});
  std::vector<float> expected_data, expected_label;
  for (int batch = 0; batch < 3; ++batch) {
    for (int i = 0; i < 6; ++i) expected_data.push_back(batch * 100 + i);
    for (int i = 0; i < 2; ++i) expected_label.push_back(batch * 10 + i);
  }
  EXPECT_EQ(Values(data), expected_data);
  EXPECT_EQ(Values(label), expected_label);
}

TEST_F(HDF5LayersTest, OutputErrors) {
  Blob data(std::vector<int>{2, 3}), label(std::vector<int>{3});
  {
    HDF5OutputLayer out(
        LayerParam("name: 'save' type: 'HDF5Output' bottom: 'data' bottom: 'label' "
                   "hdf5_output_param { file_name: '" +
                   dir_ + "/x.h5' }"));
    EXPECT_ERROR_WITH(out.SetUp({&data, &label}, {}), "'save'", "2 3", "3");
  }
  {
    HDF5OutputLayer out(
        LayerParam("name: 'save' type: 'HDF5Output' bottom: 'data' bottom: 'label' "
                   "hdf5_output_param { file_name: '" +
                   dir_ + "/no/such/dir.h5' }"));
    Blob ok_label(std::vector<int>{2});
    EXPECT_ERROR_WITH(out.SetUp({&data, &ok_label}, {}), "no/such/dir.h5");
  }
}

}  // namespace
}  // namespace crema
