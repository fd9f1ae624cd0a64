# `cmake --install build --prefix P`: the public headers (include/mdm/ and the generated version.h), the
# library, the tools, the reference-checkpoint converter script and the CMake package
# (P/lib/cmake/mdm/mdmConfig.cmake: find_package(mdm) → the target mdm::mdm). Internals (src/) stay out.
include(CMakePackageConfigHelpers)

set(MDM_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/mdm" CACHE STRING "Where the CMake package goes (relative to the prefix)")

install(TARGETS mdm EXPORT mdmTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/mdm DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/mdm/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mdm)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/scripts/convert-reference-checkpoint.py
  DESTINATION ${CMAKE_INSTALL_DATADIR}/mdm)
install(EXPORT mdmTargets NAMESPACE mdm:: FILE mdmTargets.cmake DESTINATION ${MDM_INSTALL_CMAKEDIR})

# What this build was made with travels in the package, so that find_package(mdm) finds the same
# dependencies (a library linked against one LibTorch must not meet another) and reports the options.
get_target_property(_mdm_type mdm TYPE)
if(_mdm_type STREQUAL "STATIC_LIBRARY")
  set(MDM_PACKAGE_STATIC ON)
else()
  set(MDM_PACKAGE_STATIC OFF)
endif()
# ON when the distributed sources were compiled with DEFINITION=1 (cmake/MdmDependencies.cmake).
function(_mdm_package_flag var definition)
  if(MDM_C10D_DEFINITIONS MATCHES "${definition}=1")
    set(${var} ON PARENT_SCOPE)
  else()
    set(${var} OFF PARENT_SCOPE)
  endif()
endfunction()
_mdm_package_flag(MDM_PACKAGE_C10D MDM_HAVE_C10D)
_mdm_package_flag(MDM_PACKAGE_GLOO MDM_C10D_GLOO)
_mdm_package_flag(MDM_PACKAGE_NCCL MDM_C10D_NCCL)
set(MDM_PACKAGE_WITH_CUDA ${MDM_WITH_CUDA})
set(MDM_PACKAGE_C10_CUDA_LIBRARY "")
if(MDM_WITH_CUDA)
  set(MDM_PACKAGE_C10_CUDA_LIBRARY "${MDM_C10_CUDA_LIBRARY}")
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mdmConfig.cmake.in
  ${PROJECT_BINARY_DIR}/mdmConfig.cmake INSTALL_DESTINATION ${MDM_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_BINDIR CMAKE_INSTALL_DATADIR)
# 0.x: a minor release may break the API, so only the same major.minor satisfies find_package(mdm 0.1).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mdmConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mdmConfig.cmake ${PROJECT_BINARY_DIR}/mdmConfigVersion.cmake
  DESTINATION ${MDM_INSTALL_CMAKEDIR})
