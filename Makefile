# edgemoe developer entry points. `make test` is what CI runs (through .ci/run): it creates
# .venv, installs the package with its dev extras, and runs the default suite on both cores.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: test test-slow test-all lint docs bench demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Fast suite: everything except full-model runs marked `slow`.
export OMP_NUM_THREADS := 1

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -m "not slow" -q

# Full-model runs (edge-moe preset through the golden model and fidelity checks).
test-slow: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -m slow -q

test-all: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q

lint: $(STAMP)
	$(PY) -m ruff check hw compiler sim host tests

# Figures, not pass/fail: compile time and golden-model frame time of the edge-moe preset.
bench: $(STAMP)
	$(PY) -m edgemoe.host bench compile --precision w8a16
	$(PY) -m edgemoe.host bench compile --precision w8a8
	$(PY) -m edgemoe.host bench golden --precision w8a16
	$(PY) -m edgemoe.host bench golden --precision w8a8

# The whole flow on the edge-moe preset: compile, inspect (predicted cycles), run both tasks on
# a held-out photograph and compare with the float model. Backend: the golden model, until the
# accelerator's RTL runs end to end in Verilator (then BACKEND=verilator).
BACKEND ?= golden
DEMO    := build/demo
demo: $(STAMP)
	mkdir -p $(DEMO)
	$(PY) -c "from PIL import Image; from edgemoe.compiler.calibration import natural_image, FIDELITY_IMAGE; Image.fromarray(natural_image(FIDELITY_IMAGE)).save('$(DEMO)/coffee.png')"
	$(PY) -m edgemoe.host compile edge-moe --hw edge-moe-zcu102 -o $(DEMO)/m3vit.emb
	$(PY) -m edgemoe.host inspect $(DEMO)/m3vit.emb | head -8
	$(PY) -m edgemoe.host run $(DEMO)/m3vit.emb --input $(DEMO)/coffee.png --task seg --backend $(BACKEND) --compare float -o $(DEMO)/seg.npz
	$(PY) -m edgemoe.host run $(DEMO)/m3vit.emb --input $(DEMO)/coffee.png --task depth --backend $(BACKEND) --compare float -o $(DEMO)/depth.npz

docs: $(STAMP)
	$(PY) -m edgemoe.host isa-doc

clean:
	rm -rf build sim_build .pytest_cache
