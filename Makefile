# The two quick-start commands (README): `make demo` and `make test`. Both set up first.
.PHONY: setup demo test test-fast lint

setup:
	@bash scripts/setup.sh

DEMO_OUT ?= out/demo

# The main job: the demo corpus, then a batch from three demo prompts with the shipped LDM, and
# a chest X-ray batch (PNG and one DICOM) with the shipped cxr-128 LDM.
demo: setup
	.venv/bin/radsynth data demo
	.venv/bin/radsynth generate "axial chest CT, lung window, tumour in the right lung" -n 16 --seed 0 \
		-o $(DEMO_OUT)/chest-ct --overwrite
	.venv/bin/radsynth generate "axial T1-weighted brain MR, no lesion visible" -n 16 --seed 0 \
		-o $(DEMO_OUT)/brain-mr --overwrite
	.venv/bin/radsynth generate "coronal head CT, bone window" -n 4 --seed 0 --format dicom \
		-o $(DEMO_OUT)/head-ct-dicom --overwrite
	.venv/bin/radsynth generate "PA chest X-ray of a 60-year-old man, right lower lobe pneumonia" \
		--weights cxr-128 -n 8 --seed 0 -o $(DEMO_OUT)/chest-xray --overwrite
	.venv/bin/radsynth generate "PA chest X-ray of a 60-year-old man, right lower lobe pneumonia" \
		--weights cxr-128 -n 1 --seed 0 --format dicom -o $(DEMO_OUT)/chest-xray-dicom --overwrite

test:
	@bash scripts/setup.sh --test
	.venv/bin/python -m pytest -q
	.venv/bin/lint-imports

# The edit loop: the suite without the tests marked slow (README, "Tests"); `make test` runs all.
test-fast:
	@bash scripts/setup.sh --test
	.venv/bin/python -m pytest -q -m "not slow"

lint: setup
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks

# The README's figure tables, rendered from benchmarks/results/*.json (a test checks them).
figures: setup
	.venv/bin/python benchmarks/figures.py --write
