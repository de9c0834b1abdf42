import os

# Tests load only the first-party plugins and the reference solutions, never whatever else is installed.
os.environ.setdefault("LLMKIT_LOAD_PLUGINS", "sdpa,gqa,sliding-window,sentencepiece,reference")
os.environ.setdefault("MPLBACKEND", "Agg")
# precision/compile "auto" measure the machine (llmkit.autotune); tests keep the static choice (fp32,
# eager) so that their figures do not depend on the CPU. tests/test_autotune.py and the run's own
# auto test point it at a file of their own.
os.environ.setdefault("LLMKIT_CALIBRATION", "off")
