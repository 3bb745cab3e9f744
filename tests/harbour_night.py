"""The harbour-night shot list the render-count and morning-note tests share: four shots, two characters
(ana's selfie is the one a test makes unusable), takes 1, 3, 2 and 1."""

SHOTS = """\
version: 1
project: harbour-night
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2}
characters:
  mara:
    selfies: [selfies/mara_1.jpg]
  ana:
    selfies: [selfies/ana.jpg]
shots:
  - id: sc01_sh010
    prompt: "{mara} on the quay at night, rain"
  - id: sc01_sh020
    prompt: "the harbour wall, waves breaking"
    takes: 3
  - id: sc01_sh030
    prompt: "{ana} under the lighthouse"
    takes: 2
  - id: sc01_sh040
    prompt: "a lighthouse beam over black water"
"""
