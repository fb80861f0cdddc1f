// What the user typed and chose, saved with the project.
#pragma once

#include <juce_core/juce_core.h>

namespace loopbridge
{
/** What the user typed and chose: saved with the project, edited in the editor. Touched by the
    message and network threads only, under the processor's `sessionLock`. */
struct Session
{
    juce::String prompt;
    juce::String morphPrompt;
    juce::String model { "default" };
    juce::String endpoint;
    juce::MemoryBlock audioPrompt; // WAV bytes, empty: none
    juce::String audioPromptName;
};

} // namespace loopbridge
