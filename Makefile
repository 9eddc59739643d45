SHELL := /bin/bash
# The project's tasks. `make test` is the whole test suite (what CI runs).
NBDEV_TEST_TIMEOUT ?= 2400

.PHONY: test test-fast test-long lane-notebooks lane-pytest sync-check nbtest nbtest-fast nbtest-long pytest pytest-fast pytest-long readme export docs site fresh-clone speed memory fingerprint test-floor

# The suite (what CI runs): the sync check (seconds) beside two lanes, one thread each on the two cores, of about equal length: the
# notebooks' tests (their `#| slow` cells included) followed by the test of the installed wheel and the killed and concurrent
# runs, beside the other pytest cases. The `long` tier (minutes on a CPU) is left to `make test-long`; `make test` runs the
# same code smaller.
SECOND_LANE_TESTS = tests/test_wheel.py tests/test_run_safety.py

test:
	$(MAKE) --no-print-directory -j3 --output-sync=target sync-check lane-notebooks lane-pytest

lane-notebooks: nbtest
	OMP_NUM_THREADS=1 python -m pytest -q -m "not long and not floor" --durations=5 $(SECOND_LANE_TESTS)

lane-pytest:
	OMP_NUM_THREADS=1 python -m pytest -q -m "not long and not floor" --durations=15 $(addprefix --ignore=,$(SECOND_LANE_TESTS)) tests

# The edit loop: notebooks without their `#| slow` cells beside pytest without the slow cases.
test-fast:
	$(MAKE) --no-print-directory -j2 --output-sync=target nbtest-fast pytest-fast

# The long tier: the notebooks again, their `#| long` cells included (the full-size step, the 60-step trace), beside the
# pytest cases marked `long` (each paper config's full-size step: the deep-stem ResNet-101 at the paper's crop, ~10 min on
# 2 CPU cores). `make test` and `make test-long` together run every test.
test-long: sync-check
	$(MAKE) --no-print-directory -j2 --output-sync=target nbtest-long pytest-long

# Fails if cleaning, exporting or regenerating the README would change any file: notebooks, package and README in sync.
# It runs on a copy (nbdev_export rewrites every module even when nothing changed), so the test lanes can run beside it.
SYNC_FILES = settings.ini nbs csl_nb .ci README.md
sync-check:
	@work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	tar -c --exclude='nbs/results' --exclude='*/.ipynb_checkpoints' --exclude='__pycache__' $(SYNC_FILES) | tar -x -C "$$work"; \
	fingerprint() { (cd "$$1" && find csl_nb nbs -type f \( -name '*.py' -o -name '*.ipynb' \) | sort | xargs md5sum; md5sum README.md); }; \
	before="$$(fingerprint .)"; \
	(cd "$$work" && nbdev_clean && nbdev_export && python .ci/readme.py 2>/dev/null); \
	after="$$(fingerprint "$$work")"; \
	if [ "$$before" != "$$after" ]; then echo "sync-check: notebooks, csl_nb/ and README.md are out of sync; run \`make export\`, review and commit:"; \
	  diff <(echo "$$before") <(echo "$$after") | grep '^[<>]' | awk '{print $$3}' | sort -u; exit 1; fi; \
	echo "sync-check: notebooks, csl_nb/ and README.md are in sync"

nbtest:
	OMP_NUM_THREADS=1 timeout $(NBDEV_TEST_TIMEOUT) nbdev_test --flags slow --n_workers 1 --timing

nbtest-fast:
	OMP_NUM_THREADS=1 nbdev_test --n_workers 1 --timing

nbtest-long:
	OMP_NUM_THREADS=1 timeout $(NBDEV_TEST_TIMEOUT) nbdev_test --flags "slow long" --n_workers 1 --timing

pytest:
	OMP_NUM_THREADS=1 python -m pytest -q -m "not long and not floor" tests

pytest-fast:
	OMP_NUM_THREADS=1 python -m pytest -q -m "not slow and not long and not floor" tests

pytest-long:
	OMP_NUM_THREADS=1 python -m pytest -q -m long tests

readme:
	python .ci/readme.py

export:
	nbdev_export && nbdev_clean && python .ci/readme.py

# Execute every notebook and save its outputs, then the README and the offline HTML site in _docs/.
docs:
	python .ci/execute.py && nbdev_clean && python .ci/readme.py && python .ci/docs_site.py

site:
	python .ci/docs_site.py

# The README's two commands from a clean clone in a new virtual environment, timed into nbs/results/fresh_clone.md.
fresh-clone:
	bash .ci/fresh_clone.sh

speed:
	python -m csl_nb.speed selector --out nbs/results/speed && python -m csl_nb.speed step --out nbs/results/speed

# One full-size step of each paper config at its per-GPU batch, its peak memory read by `csl_nb reproduce`.
memory:
	python -m csl_nb.speed memory --out csl_nb/assets/measured

# The fingerprint of the machine that computes the committed results, under the benchmark commands' pinned kernels: the
# reference `csl_nb demo`, `bench` and `regime` compare a user's CPU with before training.
fingerprint:
	python -m csl_nb.speed kernels --fingerprint

# The core wheel with the oldest torch and numpy settings.ini admits, in a new venv (downloads ~2.5 GB from PyPI).
test-floor:
	python -m pytest -q -m floor tests/test_floor.py
