import os

# Tests load only the first-party plugins and the reference solutions, never whatever else is installed.
os.environ.setdefault("LLMKIT_LOAD_PLUGINS", "sdpa,gqa,sliding-window,sentencepiece,reference")
os.environ.setdefault("MPLBACKEND", "Agg")
