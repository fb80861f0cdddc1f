# JUCE 7 and libzmq + cppzmq: installed packages first (Debian: juce-modules-source, libzmq3-dev,
# cppzmq-dev), otherwise fetched at configure time. LOOPBRIDGE_FETCH_DEPS=ON forces the fetch.
include(FetchContent)
option(LOOPBRIDGE_FETCH_DEPS "Fetch JUCE and cppzmq instead of using installed packages" OFF)

set(LOOPBRIDGE_JUCE_TAG "7.0.5" CACHE STRING "JUCE release fetched when no installed JUCE is found")
set(LOOPBRIDGE_CPPZMQ_TAG "v4.9.0" CACHE STRING "cppzmq release fetched when none is installed")
set(LOOPBRIDGE_LIBZMQ_TAG "v4.3.4" CACHE STRING "libzmq release fetched when none is installed")

# ---- JUCE -------------------------------------------------------------------------------------
if(NOT LOOPBRIDGE_FETCH_DEPS)
    # JUCE's package version file accepts only its exact version, so ask for none and check the major.
    find_package(JUCE CONFIG QUIET)
endif()
if(JUCE_FOUND AND JUCE_VERSION VERSION_LESS 7)
    message(FATAL_ERROR "loopbridge needs JUCE 7; found ${JUCE_VERSION} in ${JUCE_DIR} (set LOOPBRIDGE_FETCH_DEPS=ON to fetch JUCE ${LOOPBRIDGE_JUCE_TAG})")
endif()
if(JUCE_FOUND)
    message(STATUS "loopbridge: JUCE ${JUCE_VERSION} from ${JUCE_DIR}")
    # Debian's JUCE builds against the system FLAC/Ogg libraries; the plugin reads WAV only.
    set(LOOPBRIDGE_JUCE_FROM_PACKAGE ON)
else()
    message(STATUS "loopbridge: fetching JUCE ${LOOPBRIDGE_JUCE_TAG}")
    FetchContent_Declare(JUCE
        GIT_REPOSITORY https://github.com/juce-framework/JUCE.git
        GIT_TAG ${LOOPBRIDGE_JUCE_TAG}
        GIT_SHALLOW TRUE)
    FetchContent_MakeAvailable(JUCE)
    set(LOOPBRIDGE_JUCE_FROM_PACKAGE OFF)
endif()

# ---- libzmq + cppzmq --------------------------------------------------------------------------
if(NOT LOOPBRIDGE_FETCH_DEPS)
    find_package(cppzmq CONFIG QUIET)
endif()
if(TARGET cppzmq)
    message(STATUS "loopbridge: cppzmq from ${cppzmq_DIR}")
    set(LOOPBRIDGE_ZMQ_TARGET cppzmq)
else()
    message(STATUS "loopbridge: fetching libzmq ${LOOPBRIDGE_LIBZMQ_TAG} and cppzmq ${LOOPBRIDGE_CPPZMQ_TAG}")
    set(ZMQ_BUILD_TESTS OFF CACHE BOOL "" FORCE)
    set(BUILD_TESTS OFF CACHE BOOL "" FORCE)
    set(BUILD_SHARED OFF CACHE BOOL "" FORCE)
    set(BUILD_STATIC ON CACHE BOOL "" FORCE)
    set(WITH_PERF_TOOL OFF CACHE BOOL "" FORCE)
    set(ENABLE_DRAFTS OFF CACHE BOOL "" FORCE)
    set(ENABLE_CURVE OFF CACHE BOOL "" FORCE)
    FetchContent_Declare(libzmq
        GIT_REPOSITORY https://github.com/zeromq/libzmq.git
        GIT_TAG ${LOOPBRIDGE_LIBZMQ_TAG}
        GIT_SHALLOW TRUE)
    FetchContent_MakeAvailable(libzmq)
    set(CPPZMQ_BUILD_TESTS OFF CACHE BOOL "" FORCE)
    FetchContent_Declare(cppzmq
        GIT_REPOSITORY https://github.com/zeromq/cppzmq.git
        GIT_TAG ${LOOPBRIDGE_CPPZMQ_TAG}
        GIT_SHALLOW TRUE)
    FetchContent_MakeAvailable(cppzmq)
    set(LOOPBRIDGE_ZMQ_TARGET cppzmq-static)
endif()
