#include "PluginState.h"

namespace loopbridge::state
{
namespace
{
const juce::Identifier rootTag ("LOOPBRIDGE");
const juce::Identifier sessionTag ("SESSION");
const juce::Identifier sampleTag ("SAMPLE");
const juce::Identifier audioPromptTag ("AUDIO_PROMPT");

// The Generate trigger is an action, not a setting: it is neither saved nor restored, so opening
// a project never fires it.
void dropGenerate (juce::XmlElement& parameters)
{
    for (auto* child = parameters.getFirstChildElement(); child != nullptr;)
    {
        auto* next = child->getNextElement();
        if (child->getStringAttribute ("id") == ParamIDs::generate.getParamID())
            parameters.removeChildElement (child, true);
        child = next;
    }
}
} // namespace

std::unique_ptr<juce::XmlElement> toXml (juce::AudioProcessorValueTreeState& apvts, const Session& session, const Sample* sample)
{
    auto root = std::make_unique<juce::XmlElement> (rootTag);
    root->setAttribute ("version", kStateVersion);

    if (auto parameters = apvts.copyState().createXml())
    {
        dropGenerate (*parameters);
        root->addChildElement (parameters.release());
    }

    auto* s = root->createNewChildElement (sessionTag);
    s->setAttribute ("prompt", session.prompt);
    s->setAttribute ("morph_prompt", session.morphPrompt);
    s->setAttribute ("model", session.model);
    s->setAttribute ("endpoint", session.endpoint);

    if (session.audioPrompt.getSize() > 0)
    {
        auto* a = root->createNewChildElement (audioPromptTag);
        a->setAttribute ("name", session.audioPromptName);
        a->addTextElement (session.audioPrompt.toBase64Encoding());
    }

    if (sample != nullptr && sample->wavBytes.getSize() > 0)
    {
        auto* e = root->createNewChildElement (sampleTag);
        e->setAttribute ("encoding", "base64");
        e->setAttribute ("key", sample->key);
        e->setAttribute ("render_key", sample->renderKey);
        e->setAttribute ("filename", sample->fileName);
        e->setAttribute ("path", sample->enginePath);
        e->setAttribute ("kind", sample->isLoop ? "loop" : "one-shot");
        e->setAttribute ("tempo_bpm", sample->tempoBpm);
        e->setAttribute ("beats", sample->beats);
        e->setAttribute ("root_note", sample->rootNote);
        e->setAttribute ("variation", sample->variation);
        e->setAttribute ("pitch_semitones", sample->pitchSemitones);
        e->setAttribute ("musical_key", sample->musicalKey);
        e->setAttribute ("no_key", sample->saysNoKey);
        e->setAttribute ("key_confidence", sample->keyConfidence);
        e->setAttribute ("key_asked", sample->keyAsked);
        e->setAttribute ("loudness_lufs", sample->loudnessLufs);
        e->setAttribute ("loop_start", (double) sample->loopStart);
        e->setAttribute ("loop_end", (double) sample->loopEnd);
        e->addTextElement (sample->wavBytes.toBase64Encoding());
    }
    return root;
}

bool fromXml (const juce::XmlElement& xml, juce::AudioProcessorValueTreeState& apvts, Restored& out)
{
    if (! xml.hasTagName (rootTag))
        return false;

    if (auto* parameters = xml.getChildByName (apvts.state.getType()))
    {
        auto copy = std::make_unique<juce::XmlElement> (*parameters);
        dropGenerate (*copy);
        // Keep the trigger's current value: replaceState would otherwise reset it from a tree without it.
        auto tree = juce::ValueTree::fromXml (*copy);
        if (auto* generate = apvts.getParameter (ParamIDs::generate.getParamID()))
        {
            juce::ValueTree param ("PARAM");
            param.setProperty ("id", ParamIDs::generate.getParamID(), nullptr);
            param.setProperty ("value", generate->getValue() >= 0.5f ? 1.0f : 0.0f, nullptr);
            tree.appendChild (param, nullptr);
        }
        apvts.replaceState (tree);
    }

    if (auto* s = xml.getChildByName (sessionTag))
    {
        out.session.prompt = s->getStringAttribute ("prompt").substring (0, 500);
        out.session.morphPrompt = s->getStringAttribute ("morph_prompt").substring (0, 500);
        out.session.model = s->getStringAttribute ("model", "default");
        if (out.session.model.trim().isEmpty())
            out.session.model = "default";
        out.session.endpoint = s->getStringAttribute ("endpoint");
    }

    if (auto* a = xml.getChildByName (audioPromptTag))
    {
        juce::MemoryBlock bytes;
        if (bytes.fromBase64Encoding (a->getAllSubText().trim()))
        {
            out.session.audioPrompt = std::move (bytes);
            out.session.audioPromptName = a->getStringAttribute ("name");
        }
    }

    if (auto* e = xml.getChildByName (sampleTag))
    {
        juce::MemoryBlock wav;
        if (! wav.fromBase64Encoding (e->getAllSubText().trim()))
            out.sampleError = "the saved sample is not valid base64";
        else
        {
            SampleInfo info;
            info.key = e->getStringAttribute ("key");
            info.renderKey = e->getStringAttribute ("render_key");
            info.fileName = e->getStringAttribute ("filename");
            info.enginePath = e->getStringAttribute ("path");
            info.kind = e->getStringAttribute ("kind");
            info.tempoBpm = e->getDoubleAttribute ("tempo_bpm", -1.0);
            info.beats = e->getDoubleAttribute ("beats", -1.0);
            info.rootNote = e->getIntAttribute ("root_note", -1);
            info.variation = e->getIntAttribute ("variation", -1);
            info.pitchSemitones = e->getDoubleAttribute ("pitch_semitones", 0.0);
            // a project saved before keys and loudness were asked for: no key, the default loudness
            info.musicalKey = e->getStringAttribute ("musical_key");
            info.saysNoKey = e->getBoolAttribute ("no_key", false);
            info.keyConfidence = e->getDoubleAttribute ("key_confidence", -1.0);
            info.keyAsked = e->getStringAttribute ("key_asked");
            info.loudnessLufs = e->getDoubleAttribute ("loudness_lufs", protocol::kDefaultLoudnessLufs);
            info.loopStart = (juce::int64) e->getDoubleAttribute ("loop_start", -1.0);
            info.loopEnd = (juce::int64) e->getDoubleAttribute ("loop_end", -1.0);
            juce::String error;
            auto sample = Sample::fromWav (wav.getData(), wav.getSize(), info, error);
            if (sample == nullptr)
                out.sampleError = "the saved sample cannot be played: " + error;
            else
                out.sample = std::move (sample);
        }
    }
    return true;
}

} // namespace loopbridge::state
