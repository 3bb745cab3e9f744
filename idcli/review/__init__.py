"""Review of a rendered output folder: identity QA (``qa``), the storyboard page (``page``), the
director's selects (``selects``), the OTIO animatic (``export``), tables over runs (``evaluate``) and
re-rolling flagged shots (``retake``). None imports the engine; all read committed sidecars."""
