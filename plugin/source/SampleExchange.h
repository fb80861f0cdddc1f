// Lock-free hand-over of decoded samples from the network / message threads to the audio thread.
//
// Samples are built and destroyed off the audio thread only. Producers (network thread, message
// thread) publish a shared_ptr: the exchange keeps it alive in `pool` and passes the raw pointer
// through a single-producer / single-consumer FIFO (`incoming`). The audio thread takes the newest,
// and hands back each pointer it no longer uses through a second FIFO (`retired`); producers then
// drop it from the pool, so the last reference always goes away on their side.
//
// The same sample may be published again while it is still in the pool (a Variation knob turned
// away and back, served from the client's cache). The pool then holds one entry per hand-over,
// and the audio side must retire every pointer takeNewest gives it once, even one it already
// holds: a consumer that counts users per sample hands such a repeat back at once. Skipping the
// repeat here instead would be wrong: the sample published last must be the one that plays.
//
// The audio thread never allocates, locks or frees here. Producers serialise among themselves with
// `producerLock`, which the audio thread never takes.
#pragma once

#include "Sample.h"

#include <juce_core/juce_core.h>

#include <array>
#include <atomic>
#include <memory>
#include <vector>

namespace loopbridge
{
class SampleExchange
{
public:
    /** Most samples alive at once (published, in use by voices, or waiting to be collected). */
    static constexpr int kCapacity = 32;

    SampleExchange() { pool.reserve (kCapacity); }

    // ---- producers (never the audio thread) ---------------------------------------------------

    /** Makes `sample` the newest. It reaches the audio thread at its next block; until the pool has
        room it waits as `pending` (the next publish or collectGarbage retries). Returns whether it
        went out at once. */
    bool publish (std::shared_ptr<const Sample> sample)
    {
        const juce::ScopedLock lock (producerLock);
        latestSample = sample;
        pending = std::move (sample);
        collectLocked();
        return pushPendingLocked();
    }

    /** Frees what the audio thread has retired and retries a pending hand-over. */
    void collectGarbage()
    {
        const juce::ScopedLock lock (producerLock);
        collectLocked();
        pushPendingLocked();
    }

    /** The newest published sample, for the editor, the saved state and drag-out. */
    std::shared_ptr<const Sample> latest() const
    {
        const juce::ScopedLock lock (producerLock);
        return latestSample;
    }

    int getPoolSize() const
    {
        const juce::ScopedLock lock (producerLock);
        return (int) pool.size();
    }

    // ---- audio thread -------------------------------------------------------------------------

    /** The newest sample handed over since the last call, or nullptr. Older ones that arrived in
        between were never used and are retired at once. */
    const Sample* takeNewest() noexcept
    {
        const Sample* newest = nullptr;
        const auto scope = incoming.read (incoming.getNumReady());
        for (auto i = 0; i < scope.blockSize1 + scope.blockSize2; ++i)
        {
            const auto index = i < scope.blockSize1 ? scope.startIndex1 + i : scope.startIndex2 + (i - scope.blockSize1);
            if (newest != nullptr)
                retire (newest);
            newest = incomingSlots[(size_t) index];
        }
        return newest;
    }

    /** Hands back one hand-over of a sample the audio thread no longer needs. Never fails: each
        pool entry is retired at most once, and the FIFO holds as many as the pool. */
    void retire (const Sample* sample) noexcept
    {
        if (sample == nullptr)
            return;
        const auto scope = retired.write (1);
        if (scope.blockSize1 > 0)
            retiredSlots[(size_t) scope.startIndex1] = sample;
        else if (scope.blockSize2 > 0)
            retiredSlots[(size_t) scope.startIndex2] = sample;
        else
            jassertfalse; // cannot happen while the pool is bounded by kCapacity
    }

private:
    void collectLocked()
    {
        const auto scope = retired.read (retired.getNumReady());
        auto drop = [this] (int index) {
            const auto* gone = retiredSlots[(size_t) index];
            for (auto it = pool.begin(); it != pool.end(); ++it)
                if (it->get() == gone)
                {
                    pool.erase (it);
                    break;
                }
        };
        for (int i = 0; i < scope.blockSize1; ++i)
            drop (scope.startIndex1 + i);
        for (int i = 0; i < scope.blockSize2; ++i)
            drop (scope.startIndex2 + i);
    }

    bool pushPendingLocked()
    {
        if (pending == nullptr)
            return true;
        if ((int) pool.size() >= kCapacity)
            return false;
        const auto scope = incoming.write (1);
        if (scope.blockSize1 + scope.blockSize2 == 0)
            return false;
        const auto index = scope.blockSize1 > 0 ? scope.startIndex1 : scope.startIndex2;
        incomingSlots[(size_t) index] = pending.get();
        pool.push_back (std::move (pending));
        pending = nullptr;
        return true;
    }

    // AbstractFifo of N slots holds N - 1 items; one spare slot each keeps kCapacity usable.
    juce::AbstractFifo incoming { kCapacity + 1 };
    juce::AbstractFifo retired { kCapacity + 1 };
    std::array<const Sample*, kCapacity + 1> incomingSlots {};
    std::array<const Sample*, kCapacity + 1> retiredSlots {};

    mutable juce::CriticalSection producerLock;
    std::vector<std::shared_ptr<const Sample>> pool;
    std::shared_ptr<const Sample> pending;
    std::shared_ptr<const Sample> latestSample;

    JUCE_DECLARE_NON_COPYABLE (SampleExchange)
};

} // namespace loopbridge
