SHELL := /bin/bash
# The project's tasks. `make test` is the whole test suite (what CI runs).
NBDEV_TEST_TIMEOUT ?= 2400

.PHONY: test sync-check nbtest pytest readme export docs site fresh-clone speed

test: sync-check nbtest pytest

# Fails if cleaning, exporting or regenerating the README would change any file: notebooks, package and README in sync.
sync-check:
	@fingerprint() { find csl_nb nbs -type f \( -name '*.py' -o -name '*.ipynb' \) -not -path '*/.ipynb_checkpoints/*' | sort | xargs md5sum; md5sum README.md; }; \
	before="$$(fingerprint)"; \
	nbdev_clean && nbdev_export && python .ci/readme.py; \
	after="$$(fingerprint)"; \
	if [ "$$before" != "$$after" ]; then echo "sync-check: notebooks, csl_nb/ and README.md were out of sync (now rewritten; review and commit them)"; \
	  diff <(echo "$$before") <(echo "$$after") | grep '^[<>]' | awk '{print $$3}' | sort -u; exit 1; fi; \
	echo "sync-check: notebooks, csl_nb/ and README.md are in sync"

nbtest:
	timeout $(NBDEV_TEST_TIMEOUT) nbdev_test --timing

pytest:
	python -m pytest -q tests

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
