# C++ unit tests (JUCE's UnitTest), the benchmark and the editor snapshot tool.
#
# The test binary links the plugin's own shared-code library (the static library juce_add_plugin
# builds from SharedCode), so JUCE's modules are compiled once for both.
option(LOOPBRIDGE_BUILD_TESTS "Build the C++ unit tests and the benchmark" ON)
if(NOT LOOPBRIDGE_BUILD_TESTS)
    return()
endif()

enable_testing()

function(loopbridge_add_dev_executable name)
    add_executable(${name} ${ARGN})
    target_link_libraries(${name} PRIVATE ${PROJECT_NAME} ${LOOPBRIDGE_ZMQ_TARGET}
        juce::juce_recommended_config_flags juce::juce_recommended_warning_flags)
    target_include_directories(${name} PRIVATE $<TARGET_PROPERTY:${PROJECT_NAME},INCLUDE_DIRECTORIES>)
    target_compile_definitions(${name} PRIVATE $<TARGET_PROPERTY:${PROJECT_NAME},COMPILE_DEFINITIONS>)
    target_compile_options(${name} PRIVATE $<TARGET_PROPERTY:${PROJECT_NAME},COMPILE_OPTIONS>)
endfunction()

loopbridge_add_dev_executable(LoopBridgeTests
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/TestMain.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/ProtocolCodecTests.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/SampleExchangeTests.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/ProcessorTests.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/EngineClientTests.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/HostMetersTests.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/RealEngineTests.cpp)
set_target_properties(LoopBridgeTests PROPERTIES OUTPUT_NAME loopbridge-tests)
# The table of host meters that the engine's, the plugin's and the device's tests share.
get_filename_component(LOOPBRIDGE_HOST_METERS_JSON "${CMAKE_CURRENT_SOURCE_DIR}/../tests/data/host_meters.json" ABSOLUTE)
target_compile_definitions(LoopBridgeTests PRIVATE LOOPBRIDGE_HOST_METERS_JSON="${LOOPBRIDGE_HOST_METERS_JSON}")
add_test(NAME unit COMMAND LoopBridgeTests)

# processBlock timing while the network thread receives a sample (bench/plugin_process_block.py runs it)
loopbridge_add_dev_executable(LoopBridgeBench ${CMAKE_CURRENT_SOURCE_DIR}/tests/ProcessBlockBench.cpp)
set_target_properties(LoopBridgeBench PROPERTIES OUTPUT_NAME loopbridge-bench)

# The editor painted into a PNG (scripts/screenshot.sh runs it under Xvfb)
loopbridge_add_dev_executable(LoopBridgeSnapshot ${CMAKE_CURRENT_SOURCE_DIR}/tools/EditorSnapshot.cpp)
set_target_properties(LoopBridgeSnapshot PROPERTIES OUTPUT_NAME loopbridge-snapshot)

# A minimal VST3 host whose play head the host tests steer (tests/plugin: pedalboard's always says
# 120 BPM in 4/4). It hosts the built bundle, so it compiles JUCE's VST3 hosting on its own rather
# than linking the plugin's code.
juce_add_console_app(LoopBridgeTestHost PRODUCT_NAME loopbridge-test-host)
target_sources(LoopBridgeTestHost PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/tools/TestHost.cpp)
target_compile_definitions(LoopBridgeTestHost PRIVATE
    JUCE_PLUGINHOST_VST3=1
    JUCE_WEB_BROWSER=0
    JUCE_USE_CURL=0
    JUCE_DISPLAY_SPLASH_SCREEN=0
    JUCE_REPORT_APP_USAGE=0
    JUCE_USE_FLAC=0
    JUCE_USE_OGGVORBIS=0)
target_link_libraries(LoopBridgeTestHost PRIVATE juce::juce_audio_processors
    juce::juce_recommended_config_flags juce::juce_recommended_warning_flags)
set_target_properties(LoopBridgeTestHost PROPERTIES OUTPUT_NAME loopbridge-test-host
    RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}")
