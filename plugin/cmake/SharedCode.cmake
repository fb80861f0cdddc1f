# Sources, module links and JUCE settings shared by the plugin, the unit tests and the benchmark.
target_sources(SharedCode INTERFACE
    ${CMAKE_CURRENT_SOURCE_DIR}/source/PluginProcessor.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/source/PluginEditor.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/source/Parameters.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/source/ProtocolCodec.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/source/EngineClient.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/source/Sample.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/source/SamplePlayer.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/source/PluginState.cpp)

target_include_directories(SharedCode INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/source)

target_compile_definitions(SharedCode INTERFACE
    LOOPBRIDGE_VERSION="${PROJECT_VERSION}"
    JUCE_WEB_BROWSER=0
    JUCE_USE_CURL=0
    JUCE_VST3_CAN_REPLACE_VST2=0
    # no 16 x 130 hidden "MIDI CC" parameters in the host's list: the plugin plays notes and reads no controllers
    JUCE_VST3_EMULATE_MIDI_CC_WITH_PARAMETERS=0
    JUCE_DISPLAY_SPLASH_SCREEN=0
    JUCE_REPORT_APP_USAGE=0
    # WAV is all the plugin reads; this also keeps Debian's JUCE off the system FLAC/Ogg libraries
    JUCE_USE_FLAC=0
    JUCE_USE_OGGVORBIS=0
    JUCE_USE_MP3AUDIOFORMAT=0
    JUCE_USE_LAME_AUDIO_FORMAT=0
    JUCE_USE_WINDOWS_MEDIA_FORMAT=0
    JUCE_MODAL_LOOPS_PERMITTED=0
    JUCE_SILENCE_XCODE_15_LINKER_WARNING=1)

target_link_libraries(SharedCode INTERFACE
    juce::juce_audio_basics
    juce::juce_audio_formats
    juce::juce_audio_processors
    juce::juce_core
    juce::juce_data_structures
    juce::juce_events
    juce::juce_graphics
    juce::juce_gui_basics
    ${LOOPBRIDGE_ZMQ_TARGET}
    juce::juce_recommended_config_flags
    juce::juce_recommended_warning_flags)
