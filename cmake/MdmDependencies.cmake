# Every external dependency of libmdm, found in one place.
# CPU builds use Debian's packages (scripts/install-deps.sh); GPU builds point CMAKE_PREFIX_PATH at the
# CUDA LibTorch of the machine's Python torch plus a prefix with the other packages (docs/gpu.md).
find_package(Torch REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
# OpenCV decodes every image format and draws the loss curve. AUTO: use it when found. The GPU build turns it
# off (Debian's imgcodecs pulls in GDAL, too big to carry): PNG only, through libpng, and no loss curve.
set(MDM_WITH_OPENCV AUTO CACHE STRING "Use OpenCV for image decoding: ON | OFF | AUTO")
set(MDM_HAVE_OPENCV 0)
if(MDM_WITH_OPENCV STREQUAL "ON")
  find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
  set(MDM_HAVE_OPENCV 1)
elseif(MDM_WITH_OPENCV STREQUAL "AUTO")
  find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs)
  if(OpenCV_FOUND)
    set(MDM_HAVE_OPENCV 1)
  endif()
endif()
if(NOT MDM_HAVE_OPENCV)
  set(OpenCV_LIBS "")
  set(OpenCV_INCLUDE_DIRS "")
  message(STATUS "libmdm: without OpenCV (PNG decoding only, no loss curve)")
endif()
find_package(PNG REQUIRED)   # PNG with text chunks (generation parameters)
# SentencePiece is deliberately not linked: Debian's libsentencepiece.so bundles protobuf-lite and exports its
# symbols, which interpose Debian LibTorch's libprotobuf.so (every program segfaults in protobuf's static
# initialisers). libmdm reads .model files itself (src/text/) and trains by running `spm_train`.
if(MDM_BUILD_TOOLS)
  find_package(CLI11 REQUIRED)
endif()
if(MDM_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# A LibTorch built with CUDA (the GPU machine's) compiles in libmdm's CUDA-only code (CUDA graphs, the
# caching allocator's statistics: src/perf, src/diffusion/cuda_graph_denoiser.cpp) under MDM_WITH_CUDA=1.
# libc10_cuda must be there too, so that a CUDA toolkit found by something else does not switch it on.
# It sits next to libtorch: in <prefix>/lib for the PyTorch wheel and the LibTorch zip, in
# <prefix>/lib/<multiarch> for a system package (Debian's libtorch-cuda-dev).
get_filename_component(_mdm_torch_dir "${TORCH_LIBRARY}" DIRECTORY)
find_library(MDM_C10_CUDA_LIBRARY c10_cuda
  PATHS "${_mdm_torch_dir}" "${TORCH_INSTALL_PREFIX}/lib" "${TORCH_INSTALL_PREFIX}/lib/${CMAKE_LIBRARY_ARCHITECTURE}"
  NO_DEFAULT_PATH)
if((TORCH_CUDA_LIBRARIES OR CUDA_FOUND) AND MDM_C10_CUDA_LIBRARY)
  set(MDM_WITH_CUDA ON)
else()
  set(MDM_WITH_CUDA OFF)
endif()

# yaml-cpp's exported target name differs between releases.
if(TARGET yaml-cpp::yaml-cpp)
  set(MDM_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(MDM_YAML_TARGET yaml-cpp)
endif()

if(MDM_WITH_CUDA)
  message(STATUS "libmdm: LibTorch ${Torch_VERSION} (${TORCH_INSTALL_PREFIX}), CUDA code paths on (${MDM_C10_CUDA_LIBRARY})")
else()
  message(STATUS "libmdm: LibTorch ${Torch_VERSION} (${TORCH_INSTALL_PREFIX}), CPU only")
endif()

# c10d, for distributed training (docs/distributed.md). What the LibTorch in use was built with is read off
# it, never assumed: its c10d headers are there, the backend headers they include can be found (Gloo:
# Debian's libgloo-dev or a copy bundled in the LibTorch include directory; NCCL: nccl.h from the CUDA
# toolkit or the nvidia-nccl wheel next to torch), and a probe program using each backend links against
# it. Only src/distributed/ includes c10d: the defines go on those sources (src/CMakeLists.txt), so
# nothing else in the library is rebuilt when they change. The code tests libmdm's own MDM_C10D_GLOO /
# MDM_C10D_NCCL: LibTorch's CMake targets may export USE_C10D_* to every consumer whether or not the
# backend's headers are here.
include(CheckCXXSourceCompiles)
set(MDM_C10D_DEFINITIONS "")
set(MDM_C10D_INCLUDE_DIRS "")
set(_mdm_c10d_dir "")
foreach(_dir ${TORCH_INCLUDE_DIRS})
  if(NOT _mdm_c10d_dir AND EXISTS "${_dir}/torch/csrc/distributed/c10d/TCPStore.hpp")
    set(_mdm_c10d_dir "${_dir}")
  endif()
endforeach()
# The probes link the library files themselves: LibTorch's imported targets drag in dependencies
# (protobuf::libprotobuf in the PyTorch wheel's config) that a try_compile project cannot resolve.
get_filename_component(_mdm_torch_lib_dir "${TORCH_LIBRARY}" DIRECTORY)
set(_mdm_torch_probe_libs "")
foreach(_lib torch torch_cpu torch_cuda c10 c10_cuda)
  foreach(_file "${_mdm_torch_lib_dir}/lib${_lib}.so" "${TORCH_INSTALL_PREFIX}/lib/lib${_lib}.so")
    if(EXISTS "${_file}" AND NOT "${_file}" IN_LIST _mdm_torch_probe_libs)
      list(APPEND _mdm_torch_probe_libs "${_file}")
      break()
    endif()
  endforeach()
endforeach()
function(mdm_probe_c10d result defines include_dirs source)
  set(CMAKE_REQUIRED_QUIET ON)
  set(CMAKE_REQUIRED_FLAGS "${TORCH_CXX_FLAGS}")
  set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS} ${include_dirs})
  set(CMAKE_REQUIRED_DEFINITIONS ${defines})
  set(CMAKE_REQUIRED_LIBRARIES ${_mdm_torch_probe_libs})
  check_cxx_source_compiles("${source}" ${result})
endfunction()
set(_mdm_c10d_report "no (LibTorch has no torch/csrc/distributed/c10d)")
if(_mdm_c10d_dir)
  mdm_probe_c10d(MDM_C10D_STORE_LINKS "-DUSE_DISTRIBUTED" "" [=[
    #include <torch/csrc/distributed/c10d/TCPStore.hpp>
    int main() { c10d::TCPStoreOptions o; auto s = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", o); return 0; }]=])
  set(_mdm_c10d_report "no (a program using c10d::TCPStore does not link against this LibTorch)")
  if(MDM_C10D_STORE_LINKS)
    set(_mdm_c10d_report "TCPStore")
    # Gloo
    find_path(MDM_GLOO_INCLUDE_DIR gloo/algorithm.h HINTS ${TORCH_INCLUDE_DIRS})
    if(MDM_GLOO_INCLUDE_DIR AND EXISTS "${_mdm_c10d_dir}/torch/csrc/distributed/c10d/ProcessGroupGloo.hpp")
      mdm_probe_c10d(MDM_C10D_GLOO_LINKS "-DUSE_DISTRIBUTED;-DUSE_C10D_GLOO" "${MDM_GLOO_INCLUDE_DIR}" [=[
        #include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
        int main() {
          auto o = c10d::ProcessGroupGloo::Options::create();
          o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
          c10::intrusive_ptr<c10d::Store> store;
          auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, 0, 1, o);
          return 0;
        }]=])
    endif()
    if(MDM_C10D_GLOO_LINKS)
      list(APPEND MDM_C10D_DEFINITIONS USE_C10D_GLOO MDM_C10D_GLOO=1)
      list(APPEND MDM_C10D_INCLUDE_DIRS ${MDM_GLOO_INCLUDE_DIR})
      string(APPEND _mdm_c10d_report ", Gloo (headers: ${MDM_GLOO_INCLUDE_DIR})")
    else()
      string(APPEND _mdm_c10d_report ", no Gloo (gloo headers: ${MDM_GLOO_INCLUDE_DIR}; Debian: libgloo-dev)")
    endif()
    # NCCL (CUDA builds of LibTorch only)
    get_filename_component(_mdm_site "${TORCH_INSTALL_PREFIX}/.." ABSOLUTE)
    find_path(MDM_NCCL_INCLUDE_DIR nccl.h
      HINTS ${TORCH_INCLUDE_DIRS} "${_mdm_site}/nvidia/nccl/include" "${_mdm_site}/nvidia/cu13/include"
            "${_mdm_site}/nvidia/cu12/include" ENV NCCL_INCLUDE_DIR ${CUDAToolkit_INCLUDE_DIRS} ${CUDA_INCLUDE_DIRS})
    # ProcessGroupNCCL.hpp includes the CUDA runtime's headers, which TORCH_INCLUDE_DIRS lacks when they are
    # not in a system directory (the PyTorch wheel with the toolkit in /usr/local/cuda).
    set(_mdm_cuda_includes ${CUDAToolkit_INCLUDE_DIRS} ${CUDA_INCLUDE_DIRS})
    foreach(_dir "$ENV{CUDA_HOME}/include" "${CUDAToolkit_ROOT}/include" "/usr/local/cuda/include")
      if(NOT _mdm_cuda_includes AND EXISTS "${_dir}/cuda_runtime_api.h")
        set(_mdm_cuda_includes "${_dir}")
      endif()
    endforeach()
    if(_mdm_cuda_includes)  # system directories stay implicit (see below)
      list(REMOVE_ITEM _mdm_cuda_includes ${CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES})
    endif()
    if(MDM_NCCL_INCLUDE_DIR AND EXISTS "${_mdm_c10d_dir}/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp")
      mdm_probe_c10d(MDM_C10D_NCCL_LINKS "-DUSE_DISTRIBUTED;-DUSE_C10D_NCCL"
                     "${MDM_NCCL_INCLUDE_DIR};${_mdm_cuda_includes}" [=[
        #include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
        int main() {
          auto o = c10d::ProcessGroupNCCL::Options::create();
          c10::intrusive_ptr<c10d::Store> store;
          auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, 0, 1, o);
          return 0;
        }]=])
    endif()
    if(MDM_C10D_NCCL_LINKS)
      list(APPEND MDM_C10D_DEFINITIONS USE_C10D_NCCL MDM_C10D_NCCL=1)
      list(APPEND MDM_C10D_INCLUDE_DIRS ${MDM_NCCL_INCLUDE_DIR} ${_mdm_cuda_includes})
      string(APPEND _mdm_c10d_report ", NCCL (nccl.h: ${MDM_NCCL_INCLUDE_DIR})")
    elseif(MDM_NCCL_INCLUDE_DIR AND EXISTS "${_mdm_c10d_dir}/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp")
      string(APPEND _mdm_c10d_report ", no NCCL (nccl.h: ${MDM_NCCL_INCLUDE_DIR}, CUDA headers: "
             "${_mdm_cuda_includes}; the ProcessGroupNCCL probe did not build: MDM_C10D_NCCL_LINKS in "
             "CMakeFiles/CMakeConfigureLog.yaml or CMakeError.log)")
    else()
      string(APPEND _mdm_c10d_report ", no NCCL")
    endif()
    list(APPEND MDM_C10D_DEFINITIONS USE_DISTRIBUTED MDM_HAVE_C10D=1)
  endif()
endif()
if(NOT MDM_C10D_DEFINITIONS)
  set(MDM_C10D_DEFINITIONS MDM_HAVE_C10D=0)
endif()
# System directories stay implicit (an explicit -isystem /usr/include breaks #include_next in libstdc++).
list(REMOVE_DUPLICATES MDM_C10D_INCLUDE_DIRS)
list(REMOVE_ITEM MDM_C10D_INCLUDE_DIRS ${CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES} ${TORCH_INCLUDE_DIRS})
message(STATUS "libmdm: c10d: ${_mdm_c10d_report}")
message(STATUS "libmdm: distributed sources compiled with: ${MDM_C10D_DEFINITIONS}")
