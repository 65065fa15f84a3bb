# crema's CUDA emulator build (option CREMA_CUDA_EMULATOR; see tests/cuda_emu/emu_device.hpp).
#
# Every .cu/.cuh file of src/, layers/ and solvers/ is rewritten by translate.py into
# ${CREMA_EMU_SOURCE_DIR} (same relative path; .cu files get a .cpp suffix) and compiled as
# C++ with emu_device.hpp force-included. The rewritten tree comes first on the include path,
# so `#include "src/cuda_kernel.cuh"` finds the rewritten header.
find_package(Python3 REQUIRED COMPONENTS Interpreter)

set(CREMA_EMU_DIR ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda_emu)
set(CREMA_EMU_SOURCE_DIR ${CMAKE_CURRENT_BINARY_DIR}/emu_src)
file(GLOB CREMA_EMU_INPUTS CONFIGURE_DEPENDS RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}
     src/*.cu layers/*.cu solvers/*.cu src/*.cuh layers/*.cuh solvers/*.cuh)

set(CREMA_CUDA_SOURCES)
set(CREMA_EMU_HEADERS)
foreach(input ${CREMA_EMU_INPUTS})
  if(input MATCHES "\\.cu$")
    set(output ${CREMA_EMU_SOURCE_DIR}/${input}.cpp)
  else()
    set(output ${CREMA_EMU_SOURCE_DIR}/${input})
  endif()
  get_filename_component(output_dir ${output} DIRECTORY)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${output_dir}
    COMMAND Python3::Interpreter ${CREMA_EMU_DIR}/translate.py
            ${CMAKE_CURRENT_SOURCE_DIR}/${input} ${output}
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${input} ${CREMA_EMU_DIR}/translate.py
    COMMENT "crema emulator: rewriting ${input}")
  if(input MATCHES "\\.cu$")
    list(APPEND CREMA_CUDA_SOURCES ${output})
  else()
    list(APPEND CREMA_EMU_HEADERS ${output})
  endif()
endforeach()
# The rewritten headers must exist before any rewritten source compiles.
add_custom_target(crema_emu_headers DEPENDS ${CREMA_EMU_HEADERS})
set_source_files_properties(${CREMA_CUDA_SOURCES} PROPERTIES
  COMPILE_OPTIONS "-include;${CREMA_EMU_DIR}/emu_device.hpp;-Wno-unused-function;-Wno-unused-variable;-Wno-subobject-linkage")

# The emulated runtime, cuBLAS, cuDNN (legacy and graph API) and NCCL: one library in place of
# the real ones.
add_library(crema_cuda_emu STATIC
  ${CREMA_EMU_DIR}/emu_runtime.cpp ${CREMA_EMU_DIR}/cublas_emu.cpp
  ${CREMA_EMU_DIR}/cudnn_emu.cpp ${CREMA_EMU_DIR}/cudnn_backend_emu.cpp
  ${CREMA_EMU_DIR}/nccl_emu.cpp)
target_include_directories(crema_cuda_emu PRIVATE ${CMAKE_CURRENT_SOURCE_DIR} ${OPENBLAS_INCLUDE_DIR})
target_link_libraries(crema_cuda_emu PRIVATE ${OPENBLAS_LIBRARY} Threads::Threads)
target_include_directories(crema_cuda_emu SYSTEM PUBLIC ${CREMA_CUDA_HEADERS} ${CUDNN_INCLUDE_DIR}
                           ${NCCL_INCLUDE_DIR})

function(crema_link_cuda_emulator target)
  add_dependencies(${target} crema_emu_headers)
  target_include_directories(${target} BEFORE PRIVATE ${CREMA_EMU_SOURCE_DIR})
  target_compile_definitions(${target} PUBLIC CREMA_WITH_CUDA=1
                             PRIVATE CREMA_WITH_CUDNN=1 CREMA_WITH_NCCL=1)
  target_link_libraries(${target} PUBLIC crema_cuda_emu)
endfunction()
