// crema's CUDA emulator: number formats the emulated libraries share.
#pragma once

#include <cstdint>
#include <cstring>

namespace crema_emu {

// fp32 rounded to TF32 (8-bit exponent, 10-bit mantissa; nearest, ties to even), as the
// tensor cores read fp32 operands under TF32 math. Infinities and NaN pass unchanged.
inline float RoundToTf32(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if ((bits & 0x7f800000u) != 0x7f800000u) {
    const uint32_t lsb = (bits >> 13) & 1u;
    bits = (bits + 0x0fffu + lsb) & ~0x1fffu;
  }
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

}  // namespace crema_emu
