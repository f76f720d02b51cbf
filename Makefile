# Targets match the README. Everything runs inside .venv, created by scripts/setup.sh.
.PHONY: setup run test test-fast lint bench demo

setup:
	bash scripts/setup.sh --dev

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

test-fast:
	bash scripts/test.sh -m "not models"

lint:
	.venv/bin/ruff check .

bench:
	.venv/bin/python -m benchmarks.run_all $(ARGS)

demo:
	.venv/bin/python -m facerec.setup_models --samples
	cp -rn samples/5-celebrity-faces-dataset/train/. data_foto/
