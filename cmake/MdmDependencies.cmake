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
if(MDM_BUILD_TOOLS)
  find_package(CLI11 REQUIRED)
endif()
if(MDM_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# yaml-cpp's exported target name differs between releases.
if(TARGET yaml-cpp::yaml-cpp)
  set(MDM_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(MDM_YAML_TARGET yaml-cpp)
endif()

message(STATUS "libmdm: LibTorch ${Torch_VERSION} (${TORCH_INSTALL_PREFIX})")
