# The two quick-start commands (README): `make demo` and `make test`. Both set up first.
.PHONY: setup demo test lint

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/radsynth data demo

test: setup
	.venv/bin/python -m pytest -q
	.venv/bin/lint-imports

lint: setup
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks
