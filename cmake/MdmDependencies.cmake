# Every external dependency of libmdm, found in one place.
# CPU builds use Debian's packages (scripts/install-deps.sh); GPU builds point CMAKE_PREFIX_PATH at the
# CUDA LibTorch of the machine's Python torch plus a prefix with the other packages (docs/gpu.md).
find_package(Torch REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
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

# yaml-cpp's exported target name differs between releases.
if(TARGET yaml-cpp::yaml-cpp)
  set(MDM_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(MDM_YAML_TARGET yaml-cpp)
endif()

message(STATUS "libmdm: LibTorch ${Torch_VERSION} (${TORCH_INSTALL_PREFIX})")
