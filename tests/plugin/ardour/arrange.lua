-- Reopens the recorded session (the engine is gone by now), reads back what the test imported,
-- writes the one-shot track's note and saves one snapshot per track for ardour7-export.
--   ardour7-lua arrange.lua SESSION_DIR NAME NOTE_SAMPLE NOTE_PITCH
-- Prints one "key value ..." line per fact the test reads.

local dir, name = arg[1], arg[2]
local note_sample, note_pitch = tonumber(arg[3]), tonumber(arg[4])

local session = load_session(dir, name)
if not session then error("could not load the session " .. dir .. " " .. name) end

local tm = Temporal.TempoMap.read()
print("tempo_bpm " .. tm:quarters_per_minute_at(Temporal.timepos_t(0)))

local function track(track_name)
  local route = session:route_by_name(track_name)
  if route:isnil() then error("no track " .. track_name) end
  return route:to_track()
end

local function bbt(samples)
  local b = tm:bbt_at(Temporal.timepos_t(samples))
  return b.bars .. " " .. b.beats .. " " .. b.ticks
end

-- the imported file's region, as Ardour places it on its own grid
for region in track("imported"):playlist():region_list():iter() do
  local first = region:position():samples()
  local last = first + region:length():samples()
  print("imported_region " .. first .. " " .. region:length():samples() .. " " .. region:to_audioregion():n_channels())
  print("imported_start_bbt " .. bbt(first))
  print("imported_end_bbt " .. bbt(last))
end

-- one note on the one-shot track, a beat long, at NOTE_SAMPLE (a bar line)
local shot = track("shot")
local notes = shot:bounce_range(0, note_sample * 2, ARDOUR.InterThreadInfo(), shot:nth_plugin(999), false, "notes")
if notes:isnil() then error("bounce_range gave no MIDI region") end
local model = notes:to_midiregion():model()
local command = model:new_note_diff_command("add note")
local note_beats = tm:quarters_at(Temporal.timepos_t(note_sample))
command:add(ARDOUR.LuaAPI.new_noteptr(0, note_beats, Temporal.Beats(1, 0), note_pitch, 127))
model:apply_command(session, command)
shot:playlist():add_region(notes, Temporal.timepos_t(0), 1, false)
print("note_bbt " .. bbt(note_sample))

-- one snapshot per track, the others muted: each is exported on its own
local names = {"loop", "shot", "imported"}
for _, solo in ipairs(names) do
  for _, other in ipairs(names) do
    track(other):mute_control():set_value(other == solo and 0 or 1, PBD.GroupControlDisposition.NoGroup)
  end
  -- mute is a real-time control: it changes in the next process cycles, not at once
  local waited_ms = 0
  local function settled()
    for _, other in ipairs(names) do
      if track(other):mute_control():get_value() ~= (other == solo and 0 or 1) then return false end
    end
    return true
  end
  while not settled() do
    if waited_ms > 5000 then error("the mutes for snapshot " .. solo .. " did not take within 5 s") end
    ARDOUR.LuaAPI.usleep(20000)
    waited_ms = waited_ms + 20
  end
  if session:save_state(solo, false, false, false, false, false) ~= 0 then error("saving snapshot " .. solo .. " failed") end
  print("snapshot " .. solo)
end
close_session()
