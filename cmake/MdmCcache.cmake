# Use ccache for C++ when available: rebuilds of LibTorch-heavy sources dominate on small machines.
# The settings travel on the launcher's command line (cmake -E env), because an environment variable set
# while configuring is gone when ninja runs the compiler: without pch sloppiness every call that uses the
# precompiled <torch/torch.h> is uncacheable. base_dir makes paths relative to the source tree, so
# separate checkouts (git worktrees) at the same depth share the cache.
if(MDM_USE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  find_program(MDM_CCACHE_PROGRAM ccache)
  if(MDM_CCACHE_PROGRAM)
    set(CMAKE_CXX_COMPILER_LAUNCHER
        "${CMAKE_COMMAND}" -E env
        "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
        "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}"
        "${MDM_CCACHE_PROGRAM}")
    message(STATUS "libmdm: using ccache (${MDM_CCACHE_PROGRAM})")
  endif()
endif()
