// processBlock timing while the network thread receives and decodes samples, and the delay from
// a Variation change to the first block that plays the new variation.
//
//   loopbridge-bench --endpoint tcp://127.0.0.1:PORT   against a running `loopbridge serve`
//   loopbridge-bench --local-peer                      against a ZeroMQ ROUTER in this process that
//                                                      answers every request with a WAV at once
//                                                      (isolates the plugin's own share)
// Options: --blocks N (default 1500), --variations K (default 6), --sample-seconds S (local peer,
// default 8), --prompt TEXT, --model ID, --prefetch-depth D (default 1; 0: every Variation change
// goes to the engine), --steps N. Blocks are 512 samples at 48 kHz, paced in real time.
// bench/plugin_process_block.py builds and runs this and prints the figures side by side.
#include "PluginProcessor.h"
#include "ScriptedPeer.h"

#include <juce_audio_formats/juce_audio_formats.h>
#include <zmq.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

using namespace loopbridge;
namespace test = loopbridge::test;
using Clock = std::chrono::steady_clock;

namespace
{
constexpr double kSampleRate = 48000.0;
constexpr int kBlock = 512;

double microsecondsBetween (Clock::time_point a, Clock::time_point b)
{
    return std::chrono::duration<double, std::micro> (b - a).count();
}

double percentile (std::vector<double> values, double q)
{
    if (values.empty())
        return 0.0;
    std::sort (values.begin(), values.end());
    const auto index = (size_t) std::min ((double) values.size() - 1.0, q * (double) (values.size() - 1) + 0.5);
    return values[index];
}

juce::MemoryBlock makeLoopWav (double seconds, int variation)
{
    const int frames = (int) (seconds * kSampleRate);
    juce::AudioBuffer<float> audio (2, frames);
    juce::Random random (variation + 1);
    for (int ch = 0; ch < 2; ++ch)
        for (int i = 0; i < frames; ++i)
            audio.setSample (ch, i, 0.5f * (random.nextFloat() * 2.0f - 1.0f));
    juce::MemoryBlock bytes;
    auto* stream = new juce::MemoryOutputStream (bytes, false);
    juce::WavAudioFormat wav;
    std::unique_ptr<juce::AudioFormatWriter> writer (wav.createWriterFor (stream, kSampleRate, 2, 24, {}, 0));
    writer->writeFromAudioSampleBuffer (audio, 0, frames);
    writer.reset();
    return bytes;
}

struct PlayHead final : juce::AudioPlayHead
{
    juce::AudioPlayHead::PositionInfo info;
    juce::Optional<PositionInfo> getPosition() const override { return info; }
};

void setVariation (LoopBridgeProcessor& p, int variation)
{
    auto* param = p.getValueTreeState().getParameter ("variation");
    param->setValueNotifyingHost (param->convertTo0to1 ((float) variation));
}

/** Runs real-time paced blocks; calls `between (blockIndex)` before each. Returns processBlock times (µs). */
template <typename Fn>
std::vector<double> runBlocks (LoopBridgeProcessor& p, PlayHead& head, int numBlocks, long long& blockCounter, Fn&& between)
{
    juce::AudioBuffer<float> out (2, kBlock);
    juce::MidiBuffer midi;
    std::vector<double> times;
    times.reserve ((size_t) numBlocks);
    const auto period = std::chrono::duration_cast<Clock::duration> (std::chrono::duration<double> (kBlock / kSampleRate));
    auto next = Clock::now();
    for (int b = 0; b < numBlocks; ++b)
    {
        std::this_thread::sleep_until (next);
        next += period;
        if (! between (b))
            break;
        head.info.setPpqPosition ((double) blockCounter * kBlock / kSampleRate * 2.0); // 120 BPM
        head.info.setTimeInSamples (blockCounter * kBlock);
        const auto start = Clock::now();
        p.processBlock (out, midi);
        times.push_back (microsecondsBetween (start, Clock::now()));
        ++blockCounter;
    }
    return times;
}

bool waitForSample (LoopBridgeProcessor& p, juce::uint32 countBefore, double seconds)
{
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration> (std::chrono::duration<double> (seconds));
    while (Clock::now() < deadline)
    {
        if (p.getEngineStatus().samplesReceived > countBefore)
            return true;
        std::this_thread::sleep_for (std::chrono::milliseconds (5));
    }
    return false;
}
} // namespace

int main (int argc, char** argv)
{
    juce::ScopedJuceInitialiser_GUI juceInitialiser;
    juce::StringArray args;
    for (int i = 1; i < argc; ++i)
        args.add (argv[i]);
    auto option = [&] (const char* name, const juce::String& fallback) {
        const auto index = args.indexOf (name);
        return index >= 0 && index + 1 < args.size() ? args[index + 1] : fallback;
    };

    const bool localPeer = args.contains ("--local-peer");
    const int numBlocks = option ("--blocks", "1500").getIntValue();
    const int numVariations = option ("--variations", "6").getIntValue();
    std::unique_ptr<test::ScriptedPeer> peer;
    juce::String endpoint = option ("--endpoint", {});
    if (localPeer)
    {
        std::vector<juce::MemoryBlock> wavs;
        for (int v = 0; v < 8; ++v)
            wavs.push_back (makeLoopWav (option ("--sample-seconds", "8").getDoubleValue(), v));
        peer = std::make_unique<test::ScriptedPeer> (std::move (wavs));
        endpoint = peer->endpoint;
    }
    if (endpoint.isEmpty())
    {
        std::fprintf (stderr, "usage: loopbridge-bench (--endpoint tcp://HOST:PORT | --local-peer) [--blocks N] [--variations K]\n");
        return 2;
    }

    LoopBridgeProcessor p;
    PlayHead head;
    head.info.setBpm (120.0);
    head.info.setTimeSignature (juce::AudioPlayHead::TimeSignature { 4, 4 });
    head.info.setIsPlaying (true);
    p.setPlayHead (&head);
    p.setEndpoint (endpoint);
    p.setPrompt (option ("--prompt", "four on the floor drum loop"));
    p.setModel (option ("--model", "default"));
    const int prefetchDepth = option ("--prefetch-depth", "1").getIntValue();
    p.setPrefetchDepth (prefetchDepth);
    if (const auto steps = option ("--steps", "0").getIntValue(); steps > 0)
    {
        auto* quality = p.getValueTreeState().getParameter ("quality");
        quality->setValueNotifyingHost (quality->convertTo0to1 ((float) steps));
    }
    if (const auto length = option ("--length-index", "-1").getIntValue(); length >= 0)
    {
        auto* param = p.getValueTreeState().getParameter ("length");
        param->setValueNotifyingHost (param->convertTo0to1 ((float) length));
    }
    const juce::String mode = juce::String (localPeer ? "local peer" : "engine") + ", prefetch depth " + juce::String (prefetchDepth);
    p.getValueTreeState().getParameter ("kind")->setValueNotifyingHost (1.0f); // Loop: a new sample is heard at once
    p.prepareToPlay (kSampleRate, kBlock);
    long long blockCounter = 0;

    // Wait for the engine, then a first sample (Generate), so the loops below only vary it.
    const auto connectDeadline = Clock::now() + std::chrono::seconds (30);
    while (p.getEngineStatus().connection != EngineStatus::Connection::connected && Clock::now() < connectDeadline)
        std::this_thread::sleep_for (std::chrono::milliseconds (20));
    if (p.getEngineStatus().connection != EngineStatus::Connection::connected)
    {
        std::fprintf (stderr, "no engine at %s\n", endpoint.toRawUTF8());
        return 1;
    }
    auto count = p.getEngineStatus().samplesReceived;
    p.getParameters().generate.setValueNotifyingHost (1.0f);
    p.getParameters().generate.setValueNotifyingHost (0.0f);
    if (! waitForSample (p, count, 600.0))
    {
        std::fprintf (stderr, "the engine sent no sample for Generate: %s\n", p.getEngineStatus().lastError.toRawUTF8());
        return 1;
    }

    // Warm pass: every variation once, so the measured pass is served pre-rendered.
    for (int v = 1; v <= numVariations; ++v)
    {
        count = p.getEngineStatus().samplesReceived;
        setVariation (p, v);
        if (! waitForSample (p, count, 600.0))
        {
            std::fprintf (stderr, "no sample for variation %d: %s\n", v, p.getEngineStatus().lastError.toRawUTF8());
            return 1;
        }
    }
    setVariation (p, 0);
    runBlocks (p, head, 50, blockCounter, [] (int) { return true; });
    waitForSample (p, count, 30.0);
    runBlocks (p, head, 20, blockCounter, [] (int) { return true; });

    // 1. processBlock while samples arrive: a variation change every 40 blocks (~430 ms).
    int changes = 0;
    const auto receivedBefore = p.getEngineStatus().samplesReceived;
    const auto times = runBlocks (p, head, numBlocks, blockCounter, [&] (int b) {
        if (b % 40 == 20)
            setVariation (p, 1 + (changes++ % numVariations));
        return true;
    });
    const auto received = p.getEngineStatus().samplesReceived - receivedBefore;
    const double budgetUs = kBlock / kSampleRate * 1.0e6;
    std::printf ("processBlock (512 samples, 48 kHz, Loop mode, %s): %d blocks, %u samples handed over meanwhile\n",
                 mode.toRawUTF8(), (int) times.size(), (unsigned) received);
    std::printf ("  p50 %.1f us  p99 %.1f us  max %.1f us  budget %.0f us  p99/budget %.4f\n", percentile (times, 0.5), percentile (times, 0.99),
                 percentile (times, 1.0), budgetUs, percentile (times, 0.99) / budgetUs);

    // 2. Variation change -> the first block that plays it (pre-rendered variations). The knob moves
    // on another thread (as from the editor or the host's automation) at a random moment between
    // blocks; the figure runs from that moment to the start of the block whose output carries the
    // new variation, which is heard once that block is delivered (one block later).
    std::vector<double> latenciesMs;
    juce::Random random (42);
    for (int trial = 0; trial < numVariations * 2; ++trial)
    {
        const int v = 1 + trial % numVariations;
        const int target = v == p.getParameters().getVariation() ? (v % numVariations) + 1 : v;
        const auto* before = p.getPlayingSampleIdentity();
        std::atomic<bool> changed { false };
        Clock::time_point changedAt;
        const auto delay = std::chrono::microseconds (2000 + random.nextInt (20000));
        std::thread knob ([&] {
            std::this_thread::sleep_for (delay);
            changedAt = Clock::now();
            setVariation (p, target);
            changed = true;
        });
        bool heard = false;
        Clock::time_point blockStart;
        runBlocks (p, head, 400, blockCounter, [&] (int) {
            if (changed && p.getPlayingSampleIdentity() != before)
            {
                heard = true;
                return false;
            }
            blockStart = Clock::now();
            return true;
        });
        knob.join();
        if (heard)
            latenciesMs.push_back (std::chrono::duration<double, std::milli> (blockStart - changedAt).count());
        else
            std::printf ("  variation %d not heard within 400 blocks\n", target);
        runBlocks (p, head, 30, blockCounter, [] (int) { return true; });
    }
    const double blockMs = kBlock / kSampleRate * 1000.0;
    std::printf ("Variation change -> first block playing it (%s, pre-rendered): %d trials\n", mode.toRawUTF8(),
                 (int) latenciesMs.size());
    std::printf ("  to the start of that block: median %.2f ms  p90 %.2f ms  max %.2f ms  (target <= 20 ms; heard one block, %.2f ms, later)\n",
                 percentile (latenciesMs, 0.5), percentile (latenciesMs, 0.9), percentile (latenciesMs, 1.0), blockMs);
    p.setPlayHead (nullptr);
    return 0;
}
