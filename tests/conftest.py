import os

# Tests load only the first-party plugins, never whatever else happens to be installed.
os.environ.setdefault("LLMKIT_LOAD_PLUGINS", "sdpa,gqa,sliding-window,sentencepiece")
os.environ.setdefault("MPLBACKEND", "Agg")
