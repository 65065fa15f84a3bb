// im2col / col2im against a direct reference, the N-d version against the 2-D one, and
// col2im as the adjoint (<col2im(c), x> == <c, im2col(x)>), accumulating into its target.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "crema/im2col.hpp"

namespace crema {
namespace {

struct Geometry {
  int channels, height, width, kh, kw, ph, pw, sh, sw, dh, dw;
  int out_h() const { return conv_output_size(height, kh, ph, sh, dh); }
  int out_w() const { return conv_output_size(width, kw, pw, sw, dw); }
  int rows() const { return channels * kh * kw; }
  int cols() const { return out_h() * out_w(); }
};

std::vector<float> Random(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

std::vector<float> ReferenceIm2col(const std::vector<float>& im, const Geometry& g) {
  std::vector<float> col(static_cast<size_t>(g.rows()) * g.cols(), -7.f);
  for (int c = 0; c < g.channels; ++c)
    for (int i = 0; i < g.kh; ++i)
      for (int j = 0; j < g.kw; ++j)
        for (int oh = 0; oh < g.out_h(); ++oh)
          for (int ow = 0; ow < g.out_w(); ++ow) {
            const int ih = oh * g.sh - g.ph + i * g.dh;
            const int iw = ow * g.sw - g.pw + j * g.dw;
            const float v = (ih >= 0 && ih < g.height && iw >= 0 && iw < g.width)
                                ? im[(c * g.height + ih) * g.width + iw]
                                : 0.f;
            col[((c * g.kh + i) * g.kw + j) * g.cols() + oh * g.out_w() + ow] = v;
          }
  return col;
}

const std::vector<Geometry>& Geometries() {
  static const std::vector<Geometry> all = {
      {1, 4, 4, 3, 3, 0, 0, 1, 1, 1, 1},  // plain
      {2, 5, 6, 3, 2, 1, 0, 1, 1, 1, 1},  // pad, rectangular
      {3, 7, 7, 3, 3, 1, 1, 2, 2, 1, 1},  // stride 2
      {2, 9, 8, 3, 3, 2, 1, 1, 2, 2, 3},  // dilation
      {1, 5, 5, 5, 5, 2, 2, 3, 3, 1, 1},  // kernel as large as the image
      {2, 6, 5, 1, 1, 0, 0, 1, 1, 1, 1},  // 1x1
      {1, 3, 3, 2, 2, 1, 1, 3, 3, 1, 1},  // stride larger than kernel
  };
  return all;
}

TEST(Im2col, MatchesReference2d) {
  for (const Geometry& g : Geometries()) {
    const auto im = Random(static_cast<size_t>(g.channels) * g.height * g.width, 3);
    std::vector<float> col(static_cast<size_t>(g.rows()) * g.cols(), 99.f);
    im2col_cpu(im.data(), g.channels, g.height, g.width, g.kh, g.kw, g.ph, g.pw, g.sh, g.sw, g.dh,
               g.dw, col.data());
    EXPECT_EQ(col, ReferenceIm2col(im, g)) << "geometry k" << g.kh << "x" << g.kw;
  }
}

TEST(Im2col, HandComputedPadded) {
  // 1 x 3 x 3 image 1..9, kernel 2x2, pad 1, stride 2: output 2 x 2.
  const std::vector<float> im = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<float> col(4 * 4);
  im2col_cpu(im.data(), 1, 3, 3, 2, 2, 1, 1, 2, 2, 1, 1, col.data());
  const std::vector<float> expected = {
      0, 0, 0, 5,  // (i, j) = (0, 0): positions (-1,-1) (-1,1) (1,-1) (1,1)
      0, 0, 4, 6,  // (0, 1)
      0, 2, 0, 8,  // (1, 0)
      1, 3, 7, 9,  // (1, 1)
  };
  EXPECT_EQ(col, expected);
}

TEST(Im2col, LeadingDimensionPlacesBlocks) {
  const Geometry g = Geometries()[2];
  const auto im = Random(static_cast<size_t>(g.channels) * g.height * g.width, 5);
  const int ld = 3 * g.cols();
  std::vector<float> wide(static_cast<size_t>(g.rows()) * ld, 42.f);
  im2col_cpu(im.data(), g.channels, g.height, g.width, g.kh, g.kw, g.ph, g.pw, g.sh, g.sw, g.dh,
             g.dw, wide.data() + g.cols(), ld);
  const auto ref = ReferenceIm2col(im, g);
  for (int r = 0; r < g.rows(); ++r)
    for (int c = 0; c < ld; ++c) {
      const float v = wide[static_cast<size_t>(r) * ld + c];
      if (c >= g.cols() && c < 2 * g.cols())
        EXPECT_EQ(v, ref[static_cast<size_t>(r) * g.cols() + c - g.cols()]);
      else
        EXPECT_EQ(v, 42.f);
    }
}

TEST(Im2col, NdMatches2d) {
  for (const Geometry& g : Geometries()) {
    const auto im = Random(static_cast<size_t>(g.channels) * g.height * g.width, 7);
    std::vector<float> a(static_cast<size_t>(g.rows()) * g.cols()), b(a.size());
    im2col_cpu(im.data(), g.channels, g.height, g.width, g.kh, g.kw, g.ph, g.pw, g.sh, g.sw, g.dh,
               g.dw, a.data());
    const int shape[2] = {g.height, g.width}, kernel[2] = {g.kh, g.kw}, pad[2] = {g.ph, g.pw},
              stride[2] = {g.sh, g.sw}, dil[2] = {g.dh, g.dw};
    im2col_nd_cpu(im.data(), g.channels, 2, shape, kernel, pad, stride, dil, b.data());
    EXPECT_EQ(a, b);
    // col2im as well.
    std::vector<float> ia(im.size(), 0.f), ib(im.size(), 0.f);
    col2im_cpu(a.data(), g.channels, g.height, g.width, g.kh, g.kw, g.ph, g.pw, g.sh, g.sw, g.dh,
               g.dw, ia.data());
    col2im_nd_cpu(a.data(), g.channels, 2, shape, kernel, pad, stride, dil, ib.data());
    for (size_t i = 0; i < ia.size(); ++i) EXPECT_NEAR(ia[i], ib[i], 1e-5f);
  }
}

TEST(Im2col, Nd3dMatchesReference) {
  // 2 channels, 4 x 5 x 3 volume, kernel 2x3x2, pad (1,0,1), stride (2,1,1), dilation (1,2,1).
  const int C = 2, shape[3] = {4, 5, 3}, k[3] = {2, 3, 2}, p[3] = {1, 0, 1}, s[3] = {2, 1, 1},
            d[3] = {1, 2, 1};
  int out[3];
  for (int a = 0; a < 3; ++a) out[a] = conv_output_size(shape[a], k[a], p[a], s[a], d[a]);
  const int cols = out[0] * out[1] * out[2];
  const auto im = Random(C * 4 * 5 * 3, 11);
  std::vector<float> col(static_cast<size_t>(C) * 12 * cols);
  im2col_nd_cpu(im.data(), C, 3, shape, k, p, s, d, col.data());
  for (int c = 0; c < C; ++c)
    for (int k0 = 0; k0 < k[0]; ++k0)
      for (int k1 = 0; k1 < k[1]; ++k1)
        for (int k2 = 0; k2 < k[2]; ++k2)
          for (int o0 = 0; o0 < out[0]; ++o0)
            for (int o1 = 0; o1 < out[1]; ++o1)
              for (int o2 = 0; o2 < out[2]; ++o2) {
                const int i0 = o0 * s[0] - p[0] + k0 * d[0];
                const int i1 = o1 * s[1] - p[1] + k1 * d[1];
                const int i2 = o2 * s[2] - p[2] + k2 * d[2];
                const bool in = i0 >= 0 && i0 < shape[0] && i1 >= 0 && i1 < shape[1] && i2 >= 0 &&
                                i2 < shape[2];
                const float expected =
                    in ? im[((c * shape[0] + i0) * shape[1] + i1) * shape[2] + i2] : 0.f;
                const int row = ((c * k[0] + k0) * k[1] + k1) * k[2] + k2;
                const int column = (o0 * out[1] + o1) * out[2] + o2;
                ASSERT_EQ(col[static_cast<size_t>(row) * cols + column], expected);
              }
}

TEST(Im2col, Col2imIsAdjointAndAccumulates) {
  for (const Geometry& g : Geometries()) {
    const size_t n_im = static_cast<size_t>(g.channels) * g.height * g.width;
    const size_t n_col = static_cast<size_t>(g.rows()) * g.cols();
    const auto x = Random(n_im, 13), c = Random(n_col, 17), base = Random(n_im, 19);
    std::vector<float> col(n_col);
    im2col_cpu(x.data(), g.channels, g.height, g.width, g.kh, g.kw, g.ph, g.pw, g.sh, g.sw, g.dh,
               g.dw, col.data());
    std::vector<float> back = base;
    col2im_cpu(c.data(), g.channels, g.height, g.width, g.kh, g.kw, g.ph, g.pw, g.sh, g.sw, g.dh,
               g.dw, back.data());
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < n_im; ++i) lhs += double(back[i] - base[i]) * x[i];
    for (size_t i = 0; i < n_col; ++i) rhs += double(c[i]) * col[i];
    EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::abs(rhs)));
  }
}

}  // namespace
}  // namespace crema
