// The lock-free hand-over of samples to the audio thread: ordering, bounded pool, no loss, no
// early free, the same sample handed over again while it is still in use, and a two-thread stress run.
#include "SampleExchange.h"
#include "SamplePlayer.h"
#include "TestUtilities.h"

#include <thread>

namespace loopbridge
{
namespace
{
std::atomic<int> liveSamples { 0 };

struct CountedSample : Sample
{
    CountedSample() { ++liveSamples; }
    ~CountedSample() { --liveSamples; }
};

std::shared_ptr<const Sample> makeSample (int id, int frames = 64)
{
    auto s = std::make_shared<CountedSample>();
    s->sampleRate = 48000.0;
    s->audio.setSize (1, frames);
    for (int i = 0; i < frames; ++i)
        s->audio.setSample (0, i, (float) id);
    s->variation = id;
    return s;
}
} // namespace

class SampleExchangeTests final : public juce::UnitTest
{
public:
    SampleExchangeTests() : juce::UnitTest ("Sample hand-over", "loopbridge") {}

    void runTest() override
    {
        beginTest ("the audio side gets the newest sample once; skipped ones are freed");
        {
            {
                SampleExchange exchange;
                expect (exchange.takeNewest() == nullptr);
                exchange.publish (makeSample (1));
                exchange.publish (makeSample (2));
                exchange.publish (makeSample (3));
                const auto* newest = exchange.takeNewest();
                expect (newest != nullptr && newest->variation == 3);
                expect (exchange.takeNewest() == nullptr, "nothing new since");
                exchange.collectGarbage();
                expectEquals (exchange.getPoolSize(), 1);
                expectEquals (liveSamples.load(), 1, "samples 1 and 2 were never played and are gone");

                exchange.retire (newest);
                exchange.collectGarbage();
                expectEquals (exchange.getPoolSize(), 0);
                expectEquals (liveSamples.load(), 1, "the newest stays alive for the editor and the saved state");
                expect (exchange.latest()->variation == 3);
            }
            expectEquals (liveSamples.load(), 0);
        }

        beginTest ("the pool is bounded; a sample waits until the audio side makes room");
        {
            SampleExchange exchange;
            for (int i = 0; i < SampleExchange::kCapacity; ++i)
            {
                expect (exchange.publish (makeSample (i)));
                exchange.retire (exchange.takeNewest()); // audio side lets each go
                exchange.collectGarbage();
            }
            expectEquals (exchange.getPoolSize(), 0);

            // Now the audio side stops taking: the pool fills and then holds the newest as pending.
            std::vector<const Sample*> heldByAudio;
            for (int i = 0; i < SampleExchange::kCapacity; ++i)
            {
                expect (exchange.publish (makeSample (100 + i)));
                heldByAudio.push_back (exchange.takeNewest()); // a voice keeps each playing
            }
            expect (! exchange.publish (makeSample (999)), "no room: waits");
            expect (exchange.takeNewest() == nullptr);
            expectEquals (exchange.latest()->variation, 999);
            for (auto* s : heldByAudio)
                exchange.retire (s);
            exchange.collectGarbage(); // frees the retired and sends the pending one
            const auto* next = exchange.takeNewest();
            expect (next != nullptr && next->variation == 999);
            exchange.retire (next);
            exchange.collectGarbage();
            expectEquals (exchange.getPoolSize(), 0);
        }

        beginTest ("a sample published again while it is still in the pool takes no slot for good");
        {
            // Variation 0 -> 1 -> 0 within one block: the same decoded sample (the client's cache)
            // is published a second time while the player still plays it.
            {
                SampleExchange exchange;
                {
                    SamplePlayer player (exchange);
                    player.prepare (48000.0);
                    juce::AudioBuffer<float> out (2, 64);
                    juce::MidiBuffer midi;
                    const TransportState stopped;
                    auto block = [&] {
                        out.clear();
                        player.render (out, midi, SampleKind::oneShot, stopped, 0);
                        exchange.collectGarbage();
                    };

                    const auto first = makeSample (0);
                    const auto second = makeSample (1);
                    exchange.publish (first);
                    block();
                    expect (player.getCurrent() == first.get());

                    for (int cycle = 0; cycle < 3 * SampleExchange::kCapacity; ++cycle)
                    {
                        exchange.publish (second);
                        exchange.publish (first);
                        block();
                    }
                    expect (player.getCurrent() == first.get());
                    expectLessOrEqual (exchange.getPoolSize(), 1, "only what the player holds");

                    // ... and while the host does not call processBlock at all, then resumes.
                    for (int cycle = 0; cycle < 3 * SampleExchange::kCapacity; ++cycle)
                    {
                        exchange.publish (second);
                        exchange.publish (first);
                    }
                    block(); // takes what filled the pool; the newest waited as pending and goes out now
                    block();
                    expect (player.getCurrent() == first.get());
                    expectLessOrEqual (exchange.getPoolSize(), 1, "only what the player holds");

                    // A voice still plays a sample that arrives again: it is handed back once per hand-over.
                    midi.addEvent (juce::MidiMessage::noteOn (1, 60, 1.0f), 0);
                    block(); // a voice on `first`
                    midi.clear();
                    exchange.publish (second);
                    block();
                    exchange.publish (first);
                    block();
                    expect (player.getCurrent() == first.get());

                    const auto fresh = makeSample (7);
                    expect (exchange.publish (fresh), "room in the pool for a new sample");
                    block();
                    expect (player.getCurrent() == fresh.get(), "a new sample still reaches the audio thread");
                    for (int i = 0; i < 8; ++i)
                        block(); // the voice on `first` rings out
                    expectLessOrEqual (exchange.getPoolSize(), 1, "only what the player holds");
                }
                exchange.collectGarbage(); // the player handed everything back on destruction
                expectEquals (exchange.getPoolSize(), 0);
            }
            expectEquals (liveSamples.load(), 0);
        }

        beginTest ("two threads: every sample the audio side reads is intact, none leaks");
        {
            {
                SampleExchange exchange;
                std::atomic<bool> done { false }, started { false };
                std::atomic<int> corrupt { 0 }, received { 0 };
                constexpr int kPublished = 3000;

                std::thread audio ([&] {
                    const Sample* current = nullptr;
                    auto readAll = [&] {
                        // Reading every frame: a sample freed under our feet would show as garbage (or crash).
                        const auto id = (float) current->variation;
                        for (int i = 0; i < current->audio.getNumSamples(); ++i)
                            if (current->audio.getSample (0, i) != id)
                            {
                                corrupt.fetch_add (1);
                                break;
                            }
                    };
                    started = true;
                    while (! done.load())
                    {
                        if (const auto* fresh = exchange.takeNewest())
                        {
                            exchange.retire (current);
                            current = fresh;
                            received.fetch_add (1);
                        }
                        if (current != nullptr)
                            readAll();
                        std::this_thread::yield();
                    }
                    exchange.retire (current);
                    if (const auto* last = exchange.takeNewest())
                    {
                        received.fetch_add (1);
                        exchange.retire (last);
                    }
                });

                while (! started.load())
                    std::this_thread::yield();
                for (int i = 0; i < kPublished; ++i)
                {
                    exchange.publish (makeSample (i, 256));
                    std::this_thread::yield();
                }
                done = true;
                audio.join();
                exchange.collectGarbage();
                expectEquals (corrupt.load(), 0);
                expect (received.load() >= 1);
                expectLessOrEqual (exchange.getPoolSize(), 1); // a last one may have been waiting for room
                expectEquals (exchange.latest()->variation, kPublished - 1);
            }
            expectEquals (liveSamples.load(), 0);
        }

        beginTest ("the audio side's calls do not allocate");
        {
            SampleExchange exchange;
            exchange.publish (makeSample (1));
            exchange.publish (makeSample (2));
            const auto before = test::AllocationCounter::realtimeAllocations.load();
            {
                test::AllocationCounter::Scope realtime;
                const auto* s = exchange.takeNewest();
                exchange.retire (s);
                exchange.takeNewest();
            }
            expectEquals (test::AllocationCounter::realtimeAllocations.load() - before, 0);
        }
    }
};

static SampleExchangeTests sampleExchangeTests;

} // namespace loopbridge
