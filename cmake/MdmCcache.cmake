# Use ccache for C++ when available: rebuilds of LibTorch-heavy sources dominate on small machines.
if(MDM_USE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  find_program(MDM_CCACHE_PROGRAM ccache)
  if(MDM_CCACHE_PROGRAM)
    set(CMAKE_CXX_COMPILER_LAUNCHER "${MDM_CCACHE_PROGRAM}")
    # Precompiled headers change timestamps; let ccache accept them.
    set(ENV{CCACHE_SLOPPINESS} "pch_defines,time_macros,include_file_mtime,include_file_ctime")
    message(STATUS "libmdm: using ccache (${MDM_CCACHE_PROGRAM})")
  endif()
endif()
