"""The bottom layer: errors, settings, URIs, validation and the vocabulary every other layer shares."""
