# JUCE 7 and libzmq + cppzmq.
#
# - Linux, native: installed packages first (Debian: juce-modules-source, libzmq3-dev, cppzmq-dev).
# - Windows (the MinGW cross-build), macOS, or LOOPBRIDGE_FETCH_DEPS=ON: JUCE 7.0.5, libzmq 4.3.5
#   and cppzmq 4.9.0, built with the plugin and linked statically. Their sources come from
#   LOOPBRIDGE_VENDOR_DIR when it holds the upstream archives (JUCE-7.0.5.tar.gz,
#   libzmq-4.3.5.tar.gz: an offline build), otherwise from the projects' Git repositories at the
#   same versions. cppzmq is two headers; offline they are taken from an installed cppzmq-dev
#   (LOOPBRIDGE_CPPZMQ_INCLUDE_DIR), which serves any target.
include(FetchContent)
option(LOOPBRIDGE_FETCH_DEPS "Fetch JUCE, libzmq and cppzmq instead of using installed packages" OFF)

set(LOOPBRIDGE_JUCE_TAG "7.0.5" CACHE STRING "JUCE release built when no installed JUCE is used")
set(LOOPBRIDGE_LIBZMQ_TAG "v4.3.5" CACHE STRING "libzmq release built when no installed one is used")
set(LOOPBRIDGE_CPPZMQ_TAG "v4.9.0" CACHE STRING "cppzmq release used when no installed one is")
get_filename_component(LOOPBRIDGE_DEFAULT_VENDOR_DIR "${CMAKE_CURRENT_LIST_DIR}/../../../shared/vendor" ABSOLUTE)
set(LOOPBRIDGE_VENDOR_DIR "${LOOPBRIDGE_DEFAULT_VENDOR_DIR}" CACHE PATH
    "Folder of upstream source archives for offline builds (JUCE-7.0.5.tar.gz, libzmq-4.3.5.tar.gz)")

if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND NOT CMAKE_CROSSCOMPILING AND NOT LOOPBRIDGE_FETCH_DEPS)
    set(LOOPBRIDGE_USE_INSTALLED_DEPS ON)
else()
    set(LOOPBRIDGE_USE_INSTALLED_DEPS OFF)
endif()

# Declares `name` from the vendor archive `archive` when it is there, else from `repository` at `tag`.
function(loopbridge_declare name archive repository tag)
    if(EXISTS "${LOOPBRIDGE_VENDOR_DIR}/${archive}")
        message(STATUS "loopbridge: ${name} from ${LOOPBRIDGE_VENDOR_DIR}/${archive}")
        FetchContent_Declare(${name} URL "${LOOPBRIDGE_VENDOR_DIR}/${archive}")
        set(LOOPBRIDGE_${name}_FROM_VENDOR ON PARENT_SCOPE)
    else()
        message(STATUS "loopbridge: fetching ${name} ${tag} from ${repository}")
        FetchContent_Declare(${name} GIT_REPOSITORY ${repository} GIT_TAG ${tag} GIT_SHALLOW TRUE)
        set(LOOPBRIDGE_${name}_FROM_VENDOR OFF PARENT_SCOPE)
    endif()
endfunction()

# ---- JUCE -------------------------------------------------------------------------------------
if(LOOPBRIDGE_USE_INSTALLED_DEPS)
    # JUCE's package version file accepts only its exact version, so ask for none and check the major.
    find_package(JUCE CONFIG QUIET)
endif()
if(JUCE_FOUND AND JUCE_VERSION VERSION_LESS 7)
    message(FATAL_ERROR "loopbridge needs JUCE 7; found ${JUCE_VERSION} in ${JUCE_DIR} (set LOOPBRIDGE_FETCH_DEPS=ON to build JUCE ${LOOPBRIDGE_JUCE_TAG})")
endif()
if(JUCE_FOUND)
    message(STATUS "loopbridge: JUCE ${JUCE_VERSION} from ${JUCE_DIR}")
    # Debian's JUCE builds against the system FLAC/Ogg libraries; the plugin reads WAV only.
    set(LOOPBRIDGE_JUCE_FROM_PACKAGE ON)
else()
    string(REGEX REPLACE "^v" "" juce_version "${LOOPBRIDGE_JUCE_TAG}")
    loopbridge_declare(JUCE "JUCE-${juce_version}.tar.gz" https://github.com/juce-framework/JUCE.git ${LOOPBRIDGE_JUCE_TAG})
    FetchContent_MakeAvailable(JUCE)
    set(LOOPBRIDGE_JUCE_FROM_PACKAGE OFF)
endif()

# ---- libzmq + cppzmq --------------------------------------------------------------------------
if(LOOPBRIDGE_USE_INSTALLED_DEPS)
    find_package(cppzmq CONFIG QUIET)
endif()
if(TARGET cppzmq)
    message(STATUS "loopbridge: cppzmq from ${cppzmq_DIR}")
    set(LOOPBRIDGE_ZMQ_TARGET cppzmq)
else()
    # A static libzmq with the TCP transport (all loopbridge uses); no CURVE, no docs, no tests.
    set(ZMQ_BUILD_TESTS OFF CACHE BOOL "" FORCE)
    set(BUILD_TESTS OFF CACHE BOOL "" FORCE)
    set(BUILD_SHARED OFF CACHE BOOL "" FORCE)
    set(BUILD_STATIC ON CACHE BOOL "" FORCE)
    set(WITH_PERF_TOOL OFF CACHE BOOL "" FORCE)
    set(WITH_DOCS OFF CACHE BOOL "" FORCE)
    set(WITH_LIBBSD OFF CACHE BOOL "" FORCE)
    set(WITH_LIBSODIUM OFF CACHE BOOL "" FORCE)
    set(ENABLE_DRAFTS OFF CACHE BOOL "" FORCE)
    set(ENABLE_CURVE OFF CACHE BOOL "" FORCE)
    set(ENABLE_WS OFF CACHE BOOL "" FORCE)
    set(ENABLE_PRECOMPILED OFF CACHE BOOL "" FORCE) # precompiled headers defeat ccache
    set(ENABLE_CPACK OFF CACHE BOOL "" FORCE)
    if(WIN32)
        # Windows 10 (libzmq refuses MinGW's default target); no IPC: MinGW lacks afunix.h's socket
        # headers, and loopbridge speaks TCP.
        set(ZMQ_WIN32_WINNT "0x0A00" CACHE STRING "" FORCE)
        set(ZMQ_HAVE_IPC OFF CACHE BOOL "" FORCE)
    endif()
    string(REGEX REPLACE "^v" "" libzmq_version "${LOOPBRIDGE_LIBZMQ_TAG}")
    loopbridge_declare(libzmq "libzmq-${libzmq_version}.tar.gz" https://github.com/zeromq/libzmq.git ${LOOPBRIDGE_LIBZMQ_TAG})
    FetchContent_MakeAvailable(libzmq)

    # cppzmq: the headers of an installed cppzmq-dev when libzmq came from the vendor folder (offline),
    # else its release. Copied, so that the build machine's own zmq.h beside them never comes along.
    if(LOOPBRIDGE_libzmq_FROM_VENDOR)
        find_path(LOOPBRIDGE_CPPZMQ_INCLUDE_DIR zmq.hpp PATHS /usr/include /usr/local/include NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)
    endif()
    if(LOOPBRIDGE_CPPZMQ_INCLUDE_DIR)
        message(STATUS "loopbridge: cppzmq headers from ${LOOPBRIDGE_CPPZMQ_INCLUDE_DIR}")
        set(cppzmq_headers "${CMAKE_BINARY_DIR}/cppzmq-headers")
        file(COPY "${LOOPBRIDGE_CPPZMQ_INCLUDE_DIR}/zmq.hpp" "${LOOPBRIDGE_CPPZMQ_INCLUDE_DIR}/zmq_addon.hpp" DESTINATION "${cppzmq_headers}")
        add_library(loopbridge_cppzmq INTERFACE)
        target_include_directories(loopbridge_cppzmq INTERFACE "${cppzmq_headers}")
        target_link_libraries(loopbridge_cppzmq INTERFACE libzmq-static)
        set(LOOPBRIDGE_ZMQ_TARGET loopbridge_cppzmq)
    else()
        set(CPPZMQ_BUILD_TESTS OFF CACHE BOOL "" FORCE)
        FetchContent_Declare(cppzmq GIT_REPOSITORY https://github.com/zeromq/cppzmq.git GIT_TAG ${LOOPBRIDGE_CPPZMQ_TAG} GIT_SHALLOW TRUE)
        FetchContent_MakeAvailable(cppzmq)
        set(LOOPBRIDGE_ZMQ_TARGET cppzmq-static)
    endif()
endif()
