# Toolchain: Windows x64 from Linux with MinGW-w64 (Debian: g++-mingw-w64-x86-64-posix; the posix
# thread model, which std::thread and JUCE need).
#
#   cmake -S plugin -B plugin/build-windows -DCMAKE_TOOLCHAIN_FILE=plugin/cmake/mingw-w64-x86_64.cmake
#   (or plugin/build-windows.sh)
#
# Everything links statically (libgcc, libstdc++, winpthread), so the .vst3 and the programs need
# no MinGW runtime DLLs beside them: only Windows' own.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_SYSTEM_VERSION 10.0)

set(LOOPBRIDGE_MINGW_PREFIX x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${LOOPBRIDGE_MINGW_PREFIX}-gcc-posix)
set(CMAKE_CXX_COMPILER ${LOOPBRIDGE_MINGW_PREFIX}-g++-posix)
set(CMAKE_RC_COMPILER ${LOOPBRIDGE_MINGW_PREFIX}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${LOOPBRIDGE_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The cross pkg-config, or the build machine's libraries (libbsd) leak into libzmq's configure.
find_program(LOOPBRIDGE_CROSS_PKG_CONFIG ${LOOPBRIDGE_MINGW_PREFIX}-pkg-config)
if(LOOPBRIDGE_CROSS_PKG_CONFIG)
    set(PKG_CONFIG_EXECUTABLE ${LOOPBRIDGE_CROSS_PKG_CONFIG} CACHE FILEPATH "" FORCE)
else()
    set(ENV{PKG_CONFIG_LIBDIR} /usr/${LOOPBRIDGE_MINGW_PREFIX}/lib/pkgconfig)
    set(ENV{PKG_CONFIG_PATH} "")
endif()

# Programs built for Windows (JUCE's juceaide is built natively by JUCE itself) run under Wine.
find_program(LOOPBRIDGE_WINE wine)
if(LOOPBRIDGE_WINE)
    set(CMAKE_CROSSCOMPILING_EMULATOR ${LOOPBRIDGE_WINE})
endif()

set(LOOPBRIDGE_STATIC_RUNTIME "-static -static-libgcc -static-libstdc++")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${LOOPBRIDGE_STATIC_RUNTIME}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "${LOOPBRIDGE_STATIC_RUNTIME}")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "${LOOPBRIDGE_STATIC_RUNTIME}")
