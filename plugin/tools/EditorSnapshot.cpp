// Paints the real editor of a real processor into a PNG (docs/plugin-editor.png).
//
//   loopbridge-snapshot STATE_FILE OUT.png [--wait-ms N]
//
// STATE_FILE is the plugin's saved state (what a host stores; scripts/screenshot.py writes one
// with a prompt and a sample). The processor restores it, plays one block so the sample is the one
// sounding, waits for the engine status to settle, and the editor is painted with
// createComponentSnapshot at twice its size for a sharp picture.
#include "PluginEditor.h"
#include "PluginProcessor.h"

#include <juce_graphics/juce_graphics.h>

#include <cstdio>

int main (int argc, char** argv)
{
    juce::ScopedJuceInitialiser_GUI juceInitialiser;
    if (argc < 3)
    {
        std::fprintf (stderr, "usage: loopbridge-snapshot STATE_FILE OUT.png [--wait-ms N]\n");
        return 2;
    }
    const juce::File stateFile (juce::File::getCurrentWorkingDirectory().getChildFile (argv[1]));
    const juce::File outFile (juce::File::getCurrentWorkingDirectory().getChildFile (argv[2]));
    const int waitMs = argc >= 5 && juce::String (argv[3]) == "--wait-ms" ? juce::String (argv[4]).getIntValue() : 4000;

    juce::MemoryBlock state;
    if (! stateFile.loadFileAsData (state))
    {
        std::fprintf (stderr, "cannot read %s\n", stateFile.getFullPathName().toRawUTF8());
        return 1;
    }

    loopbridge::LoopBridgeProcessor processor;
    processor.setStateInformation (state.getData(), (int) state.getSize());
    processor.prepareToPlay (48000.0, 512);
    juce::AudioBuffer<float> buffer (2, 512);
    juce::MidiBuffer midi;
    processor.processBlock (buffer, midi);

    // Let the engine client connect (or find that nothing answers) so the status line says so.
    juce::Thread::sleep (waitMs);

    std::unique_ptr<juce::AudioProcessorEditor> editor (processor.createEditorIfNeeded());
    if (auto* ours = dynamic_cast<loopbridge::LoopBridgeEditor*> (editor.get()))
        ours->refresh();
    const auto image = editor->createComponentSnapshot (editor->getLocalBounds(), true, 2.0f);
    editor.reset();

    outFile.deleteFile();
    juce::FileOutputStream out (outFile);
    juce::PNGImageFormat png;
    if (! out.openedOk() || ! png.writeImageToStream (image, out))
    {
        std::fprintf (stderr, "cannot write %s\n", outFile.getFullPathName().toRawUTF8());
        return 1;
    }
    std::printf ("wrote %s (%dx%d)\n", outFile.getFullPathName().toRawUTF8(), image.getWidth(), image.getHeight());
    return 0;
}
