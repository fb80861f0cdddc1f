{
	"patcher" : {
		"fileversion" : 1,
		"appversion" : {
			"major" : 8,
			"minor" : 6,
			"revision" : 5,
			"architecture" : "x64",
			"modernui" : 1
		},
		"classnamespace" : "box",
		"rect" : [ 100, 100, 1200, 640 ],
		"bglocked" : 0,
		"openinpresentation" : 1,
		"default_fontsize" : 10,
		"default_fontface" : 0,
		"default_fontname" : "Arial Bold",
		"gridonopen" : 1,
		"gridsize" : [ 8, 8 ],
		"gridsnaponopen" : 1,
		"objectsnaponopen" : 1,
		"statusbarvisible" : 2,
		"toolbarvisible" : 1,
		"lefttoolbarpinned" : 0,
		"toptoolbarpinned" : 0,
		"righttoolbarpinned" : 0,
		"bottomtoolbarpinned" : 0,
		"toolbars_unpinned_last_save" : 0,
		"tallnewobj" : 0,
		"boxanimatetime" : 500,
		"enablehscroll" : 1,
		"enablevscroll" : 1,
		"devicewidth" : 922,
		"description" : "loopbridge: type a prompt, turn the knobs, press Generate; the sample lands as a warped clip at the song's tempo.",
		"digest" : "AI-generated samples at the song's tempo",
		"tags" : "loopbridge",
		"style" : "",
		"subpatcher_template" : "",
		"assistshowspatchername" : 0,
		"boxes" : [
			{
				"box" : {
					"id" : "obj-1",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 30, 20, 60, 18 ],
					"text" : "Prompt",
					"presentation" : 1,
					"presentation_rect" : [ 4, 2, 60, 18 ]
				}
			},
			{
				"box" : {
					"id" : "obj-2",
					"maxclass" : "textedit",
					"varname" : "Prompt",
					"numinlets" : 1,
					"numoutlets" : 4,
					"outlettype" : [ "", "int", "", "" ],
					"keymode" : 1,
					"outputmode" : 1,
					"lines" : 1,
					"parameter_enable" : 0,
					"text" : "",
					"patching_rect" : [ 30, 40, 300, 22 ],
					"presentation" : 1,
					"presentation_rect" : [ 4, 18, 300, 20 ],
					"hint" : "What to generate. Press Return to set it."
				}
			},
			{
				"box" : {
					"id" : "obj-3",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 350, 20, 80, 18 ],
					"text" : "Morph to",
					"presentation" : 1,
					"presentation_rect" : [ 310, 2, 80, 18 ]
				}
			},
			{
				"box" : {
					"id" : "obj-4",
					"maxclass" : "textedit",
					"varname" : "Morph Target",
					"numinlets" : 1,
					"numoutlets" : 4,
					"outlettype" : [ "", "int", "", "" ],
					"keymode" : 1,
					"outputmode" : 1,
					"lines" : 1,
					"parameter_enable" : 0,
					"text" : "",
					"patching_rect" : [ 350, 40, 180, 22 ],
					"presentation" : 1,
					"presentation_rect" : [ 310, 18, 180, 20 ],
					"hint" : "The prompt the Morph dial moves towards. Press Return to set it."
				}
			},
			{
				"box" : {
					"id" : "obj-5",
					"maxclass" : "live.dial",
					"varname" : "Variation",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 30, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 4, 44, 44, 48 ],
					"annotation" : "turning it fetches variation k of the last request (pre-rendered ones come from the store)",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Variation",
							"parameter_shortname" : "Variation",
							"parameter_type" : 1,
							"parameter_mmin" : 0,
							"parameter_mmax" : 99,
							"parameter_unitstyle" : 0,
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 0 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-6",
					"maxclass" : "newobj",
					"text" : "prepend variation",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 30, 170, 100, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-7",
					"maxclass" : "live.dial",
					"varname" : "Morph",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 100, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 52, 44, 44, 48 ],
					"annotation" : "turning it fetches the sample this far between Prompt and Morph Target",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Morph",
							"parameter_shortname" : "Morph",
							"parameter_type" : 0,
							"parameter_mmin" : 0,
							"parameter_mmax" : 100,
							"parameter_unitstyle" : 5,
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 0 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-8",
					"maxclass" : "newobj",
					"text" : "prepend morph",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 100, 170, 100, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-9",
					"maxclass" : "live.dial",
					"varname" : "Length",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 170, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 100, 44, 44, 48 ],
					"annotation" : "bars of a loop, texture or kit; the clip's loop length in Live",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Length",
							"parameter_shortname" : "Length",
							"parameter_type" : 2,
							"parameter_enum" : [ "1/4", "1/2", "1", "2", "4", "8", "16", "32" ],
							"parameter_mmax" : 7,
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 2 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-10",
					"maxclass" : "newobj",
					"text" : "prepend length",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 170, 170, 100, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-11",
					"maxclass" : "live.dial",
					"varname" : "Pitch",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 240, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 148, 44, 44, 48 ],
					"annotation" : "turning it re-conforms the current sample (no model run)",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Pitch",
							"parameter_shortname" : "Pitch",
							"parameter_type" : 1,
							"parameter_mmin" : -24,
							"parameter_mmax" : 24,
							"parameter_unitstyle" : 7,
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 0 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-12",
					"maxclass" : "newobj",
					"text" : "prepend pitch",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 240, 170, 100, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-13",
					"maxclass" : "live.dial",
					"varname" : "Kind",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 310, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 196, 44, 44, 48 ],
					"annotation" : "one-shot, loop, texture or kit; also picks the clip's warp mode",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Kind",
							"parameter_shortname" : "Kind",
							"parameter_type" : 2,
							"parameter_enum" : [ "one-shot", "loop", "texture", "kit" ],
							"parameter_mmax" : 3,
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 1 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-14",
					"maxclass" : "newobj",
					"text" : "prepend kind",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 310, 170, 100, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-15",
					"maxclass" : "live.dial",
					"varname" : "Quality",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 380, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 244, 44, 44, 48 ],
					"annotation" : "diffusion steps; 0 = the model's default",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Quality",
							"parameter_shortname" : "Quality",
							"parameter_type" : 1,
							"parameter_mmin" : 0,
							"parameter_mmax" : 200,
							"parameter_unitstyle" : 9,
							"parameter_units" : "steps",
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 0 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-16",
					"maxclass" : "newobj",
					"text" : "prepend quality",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 380, 170, 100, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-17",
					"maxclass" : "live.text",
					"varname" : "Generate",
					"mode" : 0,
					"text" : "Generate",
					"texton" : "Generate",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 460, 100, 80, 36 ],
					"presentation" : 1,
					"presentation_rect" : [ 348, 48, 80, 36 ],
					"annotation" : "sends a generate request with a fresh seed; the result becomes a clip",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Generate",
							"parameter_shortname" : "Generate",
							"parameter_type" : 2,
							"parameter_enum" : [ "off", "on" ],
							"parameter_mmax" : 1,
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 0 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-18",
					"maxclass" : "newobj",
					"text" : "prepend generate",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 460, 170, 100, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-19",
					"maxclass" : "live.drop",
					"varname" : "Audio Prompt",
					"legend" : "Drop audio prompt",
					"decodemode" : 1,
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 580, 100, 110, 50 ],
					"presentation" : 1,
					"presentation_rect" : [ 436, 44, 102, 48 ],
					"annotation" : "drop a clip or file to ask for variations of it",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Audio Prompt",
							"parameter_shortname" : "Audio",
							"parameter_type" : 4,
							"parameter_invisible" : 1
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-20",
					"maxclass" : "newobj",
					"text" : "prepend audio_prompt",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 580, 170, 120, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-21",
					"maxclass" : "live.text",
					"varname" : "Clear Audio",
					"mode" : 0,
					"text" : "Clear audio prompt",
					"texton" : "Clear audio prompt",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 710, 100, 100, 16 ],
					"presentation" : 1,
					"presentation_rect" : [ 436, 94, 102, 14 ],
					"annotation" : "forgets the dropped audio prompt",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Clear Audio",
							"parameter_shortname" : "Clear",
							"parameter_type" : 2,
							"parameter_enum" : [ "off", "on" ],
							"parameter_mmax" : 1,
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 0 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-22",
					"maxclass" : "newobj",
					"text" : "prepend clear_audio",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 710, 170, 120, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-40",
					"maxclass" : "live.text",
					"varname" : "Drop Mode",
					"mode" : 1,
					"text" : "Vary it",
					"texton" : "Fit to song",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 840, 100, 100, 16 ],
					"presentation" : 1,
					"presentation_rect" : [ 348, 90, 80, 18 ],
					"annotation" : "what a dropped file is for: Vary it (an audio prompt for Generate) or Fit to song (the file itself, conformed at once to the song's tempo and meter)",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Drop Mode",
							"parameter_shortname" : "Drop",
							"parameter_type" : 2,
							"parameter_enum" : [ "Vary it", "Fit to song" ],
							"parameter_mmax" : 1,
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 0 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-41",
					"maxclass" : "newobj",
					"text" : "prepend drop_mode",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 840, 170, 120, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-42",
					"maxclass" : "live.dial",
					"varname" : "Loudness",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 1000, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 292, 44, 44, 48 ],
					"annotation" : "integrated loudness of loops and textures (BS.1770; the engine's -14 by default); turning it re-conforms the current sample (no model run)",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Loudness",
							"parameter_shortname" : "Loudness",
							"parameter_type" : 0,
							"parameter_mmin" : -30,
							"parameter_mmax" : -6,
							"parameter_unitstyle" : 9,
							"parameter_units" : "LUFS",
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ -14 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-43",
					"maxclass" : "newobj",
					"text" : "prepend loudness",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 1000, 170, 110, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-44",
					"maxclass" : "live.dial",
					"varname" : "Task",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 1120, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 546, 44, 44, 48 ],
					"annotation" : "what Run Task does to the current sample: continue it, replace bars of it, transform it, extract a track from it or add a part to it (those the model offers)",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Task",
							"parameter_shortname" : "Task",
							"parameter_type" : 2,
							"parameter_enum" : [ "Continue", "Replace", "Transform", "Extract", "Add a part" ],
							"parameter_mmax" : 4,
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 0 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-45",
					"maxclass" : "newobj",
					"text" : "prepend task",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 1120, 170, 110, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-46",
					"maxclass" : "live.dial",
					"varname" : "Task Bars",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 1190, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 594, 44, 44, 48 ],
					"annotation" : "Continue: bars of the song's meter to add after the sample",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Task Bars",
							"parameter_shortname" : "Bars",
							"parameter_type" : 0,
							"parameter_mmin" : 0.25,
							"parameter_mmax" : 64,
							"parameter_unitstyle" : 9,
							"parameter_units" : "bars",
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 1 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-47",
					"maxclass" : "newobj",
					"text" : "prepend task_bars",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 1190, 170, 110, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-48",
					"maxclass" : "live.dial",
					"varname" : "From Bar",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 1260, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 642, 44, 44, 48 ],
					"annotation" : "Replace: where the bars made anew start, a bar position from 0 at the sample's start",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "From Bar",
							"parameter_shortname" : "From",
							"parameter_type" : 0,
							"parameter_mmin" : 0,
							"parameter_mmax" : 63.75,
							"parameter_unitstyle" : 9,
							"parameter_units" : "bar",
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 0 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-49",
					"maxclass" : "newobj",
					"text" : "prepend from_bar",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 1260, 170, 110, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-50",
					"maxclass" : "live.dial",
					"varname" : "To Bar",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 1330, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 690, 44, 44, 48 ],
					"annotation" : "Replace: where they end (after From Bar, within the sample)",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "To Bar",
							"parameter_shortname" : "To",
							"parameter_type" : 0,
							"parameter_mmin" : 0.25,
							"parameter_mmax" : 64,
							"parameter_unitstyle" : 9,
							"parameter_units" : "bar",
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 1 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-51",
					"maxclass" : "newobj",
					"text" : "prepend to_bar",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 1330, 170, 110, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-52",
					"maxclass" : "live.dial",
					"varname" : "Track",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 1400, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 738, 44, 44, 48 ],
					"annotation" : "Extract: the track to pull out of the sample; Add a part: the track to make for it",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Track",
							"parameter_shortname" : "Track",
							"parameter_type" : 2,
							"parameter_enum" : [ "Vocals", "Backing vocals", "Drums", "Bass", "Guitar", "Keyboard", "Percussion", "Strings", "Synth", "FX", "Brass", "Woodwinds" ],
							"parameter_mmax" : 11,
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 2 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-53",
					"maxclass" : "newobj",
					"text" : "prepend track",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 1400, 170, 110, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-54",
					"maxclass" : "live.dial",
					"varname" : "Strength",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "float" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 1470, 100, 44, 48 ],
					"presentation" : 1,
					"presentation_rect" : [ 786, 44, 44, 48 ],
					"annotation" : "Transform: how far the sample is remade after the prompt (0 keeps it, 100 % ignores it)",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Strength",
							"parameter_shortname" : "Strength",
							"parameter_type" : 0,
							"parameter_mmin" : 0,
							"parameter_mmax" : 100,
							"parameter_unitstyle" : 5,
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 50 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-55",
					"maxclass" : "newobj",
					"text" : "prepend strength",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 1470, 170, 110, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-56",
					"maxclass" : "live.text",
					"varname" : "Run Task",
					"mode" : 0,
					"text" : "Run Task",
					"texton" : "Run Task",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"parameter_enable" : 1,
					"patching_rect" : [ 1540, 100, 80, 36 ],
					"presentation" : 1,
					"presentation_rect" : [ 838, 48, 76, 36 ],
					"annotation" : "runs the Task on the current sample (the clip the device made or fitted last); the result becomes a new clip and follows the tempo like any sample",
					"saved_attribute_attributes" : {
						"valueof" : {
							"parameter_longname" : "Run Task",
							"parameter_shortname" : "Run Task",
							"parameter_type" : 2,
							"parameter_enum" : [ "off", "on" ],
							"parameter_mmax" : 1,
							"parameter_initial_enable" : 1,
							"parameter_initial" : [ 0 ]
						}
					}
				}
			},
			{
				"box" : {
					"id" : "obj-57",
					"maxclass" : "newobj",
					"text" : "prepend run_task",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 1540, 170, 110, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-60",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 1120, 20, 200, 18 ],
					"text" : "On the current sample",
					"presentation" : 1,
					"presentation_rect" : [ 546, 2, 200, 18 ]
				}
			},
			{
				"box" : {
					"id" : "obj-58",
					"maxclass" : "newobj",
					"text" : "prepend set",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 500, 420, 75, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-59",
					"maxclass" : "comment",
					"varname" : "tasks",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 540, 470, 360, 34 ],
					"text" : "Tasks on the sample: as the model offers them",
					"presentation" : 1,
					"presentation_rect" : [ 546, 112, 364, 32 ]
				}
			},
			{
				"box" : {
					"id" : "obj-23",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 30, 470, 486, 34 ],
					"text" : "Type a prompt and press Generate. The engine: loopbridge serve",
					"varname" : "status",
					"linecount" : 2,
					"presentation" : 1,
					"presentation_rect" : [ 4, 112, 534, 32 ]
				}
			},
			{
				"box" : {
					"id" : "obj-24",
					"maxclass" : "slider",
					"varname" : "progress",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"parameter_enable" : 0,
					"floatoutput" : 1,
					"size" : 1,
					"ignoreclick" : 1,
					"orientation" : 1,
					"patching_rect" : [ 30, 520, 486, 8 ],
					"presentation" : 1,
					"presentation_rect" : [ 4, 148, 534, 8 ]
				}
			},
			{
				"box" : {
					"id" : "obj-25",
					"maxclass" : "newobj",
					"text" : "js loopbridge.js",
					"numinlets" : 3,
					"numoutlets" : 3,
					"outlettype" : [ "", "", "" ],
					"patching_rect" : [ 30, 300, 500, 22 ],
					"saved_object_attributes" : {
						"filename" : "loopbridge.js",
						"parameter_enable" : 0
					}
				}
			},
			{
				"box" : {
					"id" : "obj-26",
					"maxclass" : "newobj",
					"text" : "live.thisdevice",
					"numinlets" : 1,
					"numoutlets" : 3,
					"outlettype" : [ "bang", "int", "int" ],
					"patching_rect" : [ 860, 20, 90, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-27",
					"maxclass" : "newobj",
					"text" : "t b b",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "bang", "bang" ],
					"patching_rect" : [ 860, 60, 40, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-28",
					"maxclass" : "message",
					"text" : "init",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 860, 240, 40, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-29",
					"maxclass" : "newobj",
					"text" : "dspstate~",
					"numinlets" : 1,
					"numoutlets" : 4,
					"outlettype" : [ "int", "float", "int", "int" ],
					"patching_rect" : [ 920, 100, 70, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-30",
					"maxclass" : "newobj",
					"text" : "prepend sample_rate",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 920, 140, 120, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-31",
					"maxclass" : "newobj",
					"text" : "udpreceive 9001",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 620, 220, 100, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-32",
					"maxclass" : "newobj",
					"text" : "deferlow",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 620, 250, 60, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-33",
					"maxclass" : "newobj",
					"text" : "udpsend 127.0.0.1 9000",
					"numinlets" : 1,
					"numoutlets" : 0,
					"outlettype" : [  ],
					"patching_rect" : [ 30, 380, 140, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-34",
					"maxclass" : "newobj",
					"text" : "route status progress tasks",
					"numinlets" : 2,
					"numoutlets" : 4,
					"outlettype" : [ "", "", "", "" ],
					"patching_rect" : [ 300, 380, 170, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-35",
					"maxclass" : "newobj",
					"text" : "prepend set",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 300, 420, 75, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-36",
					"maxclass" : "newobj",
					"text" : "prepend set",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 400, 420, 75, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-37",
					"maxclass" : "newobj",
					"text" : "plugin~",
					"numinlets" : 2,
					"numoutlets" : 2,
					"outlettype" : [ "signal", "signal" ],
					"patching_rect" : [ 860, 400, 50, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-38",
					"maxclass" : "newobj",
					"text" : "plugout~",
					"numinlets" : 2,
					"numoutlets" : 2,
					"outlettype" : [ "signal", "signal" ],
					"patching_rect" : [ 860, 460, 50, 22 ]
				}
			},
			{
				"box" : {
					"id" : "obj-39",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 860, 300, 300, 48 ],
					"text" : "loopbridge: AI samples at the song's tempo. The logic is in loopbridge.js (see ableton/README.md); audio passes through untouched.",
					"linecount" : 3
				}
			}
		],
		"lines" : [
			{
				"patchline" : {
					"destination" : [ "obj-6", 0 ],
					"source" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-8", 0 ],
					"source" : [ "obj-7", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-10", 0 ],
					"source" : [ "obj-9", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-12", 0 ],
					"source" : [ "obj-11", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-14", 0 ],
					"source" : [ "obj-13", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-16", 0 ],
					"source" : [ "obj-15", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-18", 0 ],
					"source" : [ "obj-17", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-20", 0 ],
					"source" : [ "obj-19", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-22", 0 ],
					"source" : [ "obj-21", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-6", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-8", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-10", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-12", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-14", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-16", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-18", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-20", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-22", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-41", 0 ],
					"source" : [ "obj-40", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-41", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-43", 0 ],
					"source" : [ "obj-42", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 1 ],
					"source" : [ "obj-2", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 2 ],
					"source" : [ "obj-4", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-27", 0 ],
					"source" : [ "obj-26", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-29", 0 ],
					"source" : [ "obj-27", 1 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-28", 0 ],
					"source" : [ "obj-27", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-28", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-30", 0 ],
					"source" : [ "obj-29", 1 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-30", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-32", 0 ],
					"source" : [ "obj-31", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-25", 0 ],
					"source" : [ "obj-32", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-33", 0 ],
					"source" : [ "obj-25", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-31", 0 ],
					"source" : [ "obj-25", 1 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-34", 0 ],
					"source" : [ "obj-25", 2 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-35", 0 ],
					"source" : [ "obj-34", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-36", 0 ],
					"source" : [ "obj-34", 1 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-23", 0 ],
					"source" : [ "obj-35", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-24", 0 ],
					"source" : [ "obj-36", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-38", 0 ],
					"source" : [ "obj-37", 0 ]
				}
			},
			{
				"patchline" : {
					"destination" : [ "obj-38", 1 ],
					"source" : [ "obj-37", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-44", 0 ],
					"destination" : [ "obj-45", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-45", 0 ],
					"destination" : [ "obj-25", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-46", 0 ],
					"destination" : [ "obj-47", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-47", 0 ],
					"destination" : [ "obj-25", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-48", 0 ],
					"destination" : [ "obj-49", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-49", 0 ],
					"destination" : [ "obj-25", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-50", 0 ],
					"destination" : [ "obj-51", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-51", 0 ],
					"destination" : [ "obj-25", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-52", 0 ],
					"destination" : [ "obj-53", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-53", 0 ],
					"destination" : [ "obj-25", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-54", 0 ],
					"destination" : [ "obj-55", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-55", 0 ],
					"destination" : [ "obj-25", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-56", 0 ],
					"destination" : [ "obj-57", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-57", 0 ],
					"destination" : [ "obj-25", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-34", 2 ],
					"destination" : [ "obj-58", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-58", 0 ],
					"destination" : [ "obj-59", 0 ]
				}
			}
		],
		"parameters" : {
			"obj-5" : [ "Variation", "Variation", 0 ],
			"obj-7" : [ "Morph", "Morph", 0 ],
			"obj-9" : [ "Length", "Length", 0 ],
			"obj-11" : [ "Pitch", "Pitch", 0 ],
			"obj-13" : [ "Kind", "Kind", 0 ],
			"obj-15" : [ "Quality", "Quality", 0 ],
			"obj-17" : [ "Generate", "Generate", 0 ],
			"obj-19" : [ "Audio Prompt", "Audio", 0 ],
			"obj-21" : [ "Clear Audio", "Clear", 0 ],
			"obj-40" : [ "Drop Mode", "Drop", 0 ],
			"obj-42" : [ "Loudness", "Loudness", 0 ],
			"obj-44" : [ "Task", "Task", 0 ],
			"obj-46" : [ "Task Bars", "Bars", 0 ],
			"obj-48" : [ "From Bar", "From", 0 ],
			"obj-50" : [ "To Bar", "To", 0 ],
			"obj-52" : [ "Track", "Track", 0 ],
			"obj-54" : [ "Strength", "Strength", 0 ],
			"obj-56" : [ "Run Task", "Run Task", 0 ],
			"inherited_shortname" : 1
		},
		"latency" : 0,
		"is_mpe" : 0,
		"autosave" : 0
	}
}
