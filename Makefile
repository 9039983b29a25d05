# Two commands for a fresh machine: `make demo` (the quickstart on built-in data) and `make test`.
# Both create/reuse .venv and install what they need. GPU users: install your CUDA torch build
# into the venv first, or set TORCH_SPEC to the build you want.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test bench clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	@# one OpenCV: drop the builds older set-ups installed beside it (they share the cv2/ folder)
	$(PY) -m pip uninstall -y -q opencv-python-headless opencv-contrib-python mediapipe 2>/dev/null || true
	$(PY) -m pip install -q -e ".[train,eval,export,tflite,coreml,openvino,ncnn,mnn,executorch,quantize,runtime,faceid,prepare,dev]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/edgegan quickstart --out runs/quickstart

test: $(VENV)/.installed
	scripts/setup_web.sh  # npm packages + Chromium for the in-browser end-to-end test
	scripts/setup_gui.sh  # Xvfb + xdotool for the window test
	scripts/setup_rknn.sh  # rknn-toolkit2 in .venv-rknn (its pins clash with ours) for the RKNN export test
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf $(VENV) .venv-rknn runs .pytest_cache
