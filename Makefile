# The two commands of the README. Each creates .venv when missing, installs, then runs.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out/demo

.PHONY: test demo install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel; nothing later may pull another build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# Push-T's simulator without its declared pygame: vizdoom needs pygame-ce, and the two install one `pygame`
	# module over each other; gym-pusht runs on pygame-ce (its pymunk, shapely, cv2 come with the pusht extra).
	$(PY) -m pip install -q --no-deps gym-pusht==0.1.8
	touch $(STAMP)

install: $(STAMP)

# Two test workers of one torch thread each: most tests are small or single-threaded, so two of them keep both cores
# busy (the suite took 688 s serially, 456 s so; `make test TEST_WORKERS=0` runs it serially in one process).
TEST_WORKERS ?= 2

test: $(STAMP)
	sh scripts/ensure_chromium.sh  # Debian's chromium for the report's browser test; never fails the target
	HF_HUB_OFFLINE=1 $(if $(filter 0,$(TEST_WORKERS)),,OMP_NUM_THREADS=1) $(PY) -m pytest -q -n $(TEST_WORKERS) \
	    --dist worksteal

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/vid2world demo --out $(OUT)

clean:
	rm -rf $(VENV) out .pytest_cache
